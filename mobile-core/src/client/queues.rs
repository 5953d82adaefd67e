//! The device's upload queues: one for full embeddings, used until a projection is
//! installed, and one per projection version for the codes made with it.
//!
//! Under `<storage>/queue/<model>/`: `embeddings/` and `codes-v<version>-k<k>/`, each an
//! [`UploadQueue`]. The width `k` is in the directory name so that a queue of an
//! older version, left with entries after an update, reopens without its artifact.
//! The model is in the path because a queue's entries are raw values and its shards take
//! the model id of the queue that builds them: rows an app queued with one model and had
//! not uploaded when it moved to another stay under the first model's directory, never
//! relabelled as the second's.

use crate::queue::{Batch, QueueConfig, QueueError, UploadQueue};
use fruits_formats::{Encoding, ModelId};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs;
use std::path::{Path, PathBuf};

/// Which queue: full embeddings, or codes of one projection version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueueKey {
    /// Full `f32` embeddings (what the aggregator's PCA reads).
    Embeddings,
    /// `f16` codes made with projection `version`, `k` values each.
    Codes {
        /// The projection version.
        version: u32,
        /// Its number of components.
        k: u32,
    },
}

/// What every queue of one device shares.
#[derive(Debug, Clone)]
pub(crate) struct QueueSettings {
    pub device_id: String,
    pub model_id: ModelId,
    pub embedding_dim: u32,
    pub batch_rows: usize,
    pub max_entries: usize,
}

/// The open queues of one device.
#[derive(Debug)]
pub(crate) struct Queues {
    root: PathBuf,
    settings: QueueSettings,
    open: BTreeMap<QueueKey, UploadQueue>,
}

impl QueueKey {
    fn dir_name(self) -> String {
        match self {
            Self::Embeddings => "embeddings".to_owned(),
            Self::Codes { version, k } => format!("codes-v{version}-k{k}"),
        }
    }

    fn parse(name: &str) -> Option<Self> {
        if name == "embeddings" {
            return Some(Self::Embeddings);
        }
        let (version, k) = name.strip_prefix("codes-v")?.split_once("-k")?;
        Some(Self::Codes { version: version.parse().ok()?, k: k.parse().ok()? })
    }
}

impl Queues {
    /// Opens the embeddings queue and every codes queue of the settings' model found
    /// under `root` (`<storage>/queue`).
    pub fn open(root: &Path, settings: QueueSettings) -> Result<Self, QueueError> {
        let root = root.join(settings.model_id.to_string());
        fs::create_dir_all(&root)?;
        let mut queues = Self { root: root.clone(), settings, open: BTreeMap::new() };
        queues.get(QueueKey::Embeddings)?;
        for entry in fs::read_dir(&root)? {
            if let Some(key) = QueueKey::parse(&entry?.file_name().to_string_lossy()) {
                queues.get(key)?;
            }
        }
        Ok(queues)
    }

    /// The queue for `key`, opened on first use.
    fn get(&mut self, key: QueueKey) -> Result<&mut UploadQueue, QueueError> {
        match self.open.entry(key) {
            Entry::Occupied(open) => Ok(open.into_mut()),
            Entry::Vacant(slot) => {
                let s = &self.settings;
                let (dim, encoding) = match key {
                    QueueKey::Embeddings => (s.embedding_dim, Encoding::F32),
                    QueueKey::Codes { version, k } => (k, Encoding::ProjectedF16 { projection_version: version }),
                };
                let config = QueueConfig {
                    device_id: s.device_id.clone(),
                    model_id: s.model_id,
                    dim,
                    encoding,
                    max_entries: s.max_entries,
                    batch_rows: s.batch_rows,
                };
                Ok(slot.insert(UploadQueue::open(&self.root.join(key.dir_name()), config)?))
            }
        }
    }

    /// Appends one entry to the queue for `key`.
    pub fn push(
        &mut self,
        key: QueueKey,
        values: &[f32],
        label: Option<&str>,
        created_unix_ms: u64,
    ) -> Result<(), QueueError> {
        self.get(key)?.push_labelled(values, label, created_unix_ms)
    }

    /// The head batch of `key`'s queue, if any.
    pub fn next_batch(&mut self, key: QueueKey) -> Result<Option<Batch>, QueueError> {
        self.get(key)?.next_batch()
    }

    /// Removes an uploaded batch from `key`'s queue.
    pub fn ack(&mut self, key: QueueKey, batch: &Batch) -> Result<(), QueueError> {
        self.get(key)?.ack(batch)
    }

    /// Every open queue, embeddings first, then codes by version.
    pub fn keys(&self) -> Vec<QueueKey> {
        self.open.keys().copied().collect()
    }

    /// Entries waiting in all queues.
    pub fn len(&self) -> usize {
        self.open.values().map(UploadQueue::len).sum()
    }

    /// Closes and deletes the empty codes queues other than `keep`'s (older
    /// projections that nothing will be added to again).
    pub fn remove_drained(&mut self, keep: Option<QueueKey>) -> Result<(), QueueError> {
        let drained: Vec<QueueKey> = self
            .open
            .iter()
            .filter(|(key, q)| matches!(key, QueueKey::Codes { .. }) && Some(**key) != keep && q.is_empty())
            .map(|(key, _)| *key)
            .collect();
        for key in drained {
            self.open.remove(&key);
            fs::remove_dir_all(self.root.join(key.dir_name()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> QueueSettings {
        QueueSettings {
            device_id: "d".into(),
            model_id: ModelId::of_bytes(b"m"),
            embedding_dim: 4,
            batch_rows: 8,
            max_entries: 100,
        }
    }

    #[test]
    fn codes_queues_reopen_with_their_width_and_drained_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queues::open(dir.path(), settings()).unwrap();
        let (v1, v2) = (QueueKey::Codes { version: 1, k: 2 }, QueueKey::Codes { version: 2, k: 3 });
        q.push(QueueKey::Embeddings, &[1.0; 4], Some("Kiwi"), 0).unwrap();
        q.push(v1, &[1.0, 2.0], None, 0).unwrap();
        q.push(v2, &[1.0, 2.0, 3.0], None, 0).unwrap();
        assert!(matches!(q.push(v1, &[1.0; 3], None, 0), Err(QueueError::WrongDim { .. })));
        drop(q);
        let mut q = Queues::open(dir.path(), settings()).unwrap();
        assert_eq!((q.keys(), q.len()), (vec![QueueKey::Embeddings, v1, v2], 3));
        let batch = q.next_batch(v1).unwrap().unwrap();
        q.ack(v1, &batch).unwrap();
        q.remove_drained(Some(v2)).unwrap();
        assert_eq!(q.keys(), vec![QueueKey::Embeddings, v2]);
        let model_dir = dir.path().join(settings().model_id.to_string());
        assert!(!model_dir.join("codes-v1-k2").exists() && model_dir.join("codes-v2-k3").exists());
        assert_eq!(QueueKey::parse("codes-vx-k2"), None);
    }

    #[test]
    fn rows_queued_with_one_model_are_never_uploaded_as_another_models() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queues::open(dir.path(), settings()).unwrap();
        q.push(QueueKey::Embeddings, &[1.0; 4], Some("Kiwi"), 0).unwrap();
        drop(q);
        let int8 = QueueSettings { model_id: ModelId::of_bytes(b"int8"), ..settings() };
        let mut moved = Queues::open(dir.path(), int8.clone()).unwrap();
        assert_eq!(moved.len(), 0, "the other model's rows are not this model's");
        moved.push(QueueKey::Embeddings, &[2.0; 4], None, 0).unwrap();
        let batch = moved.next_batch(QueueKey::Embeddings).unwrap().unwrap();
        assert_eq!(fruits_formats::Shard::decode(&batch.shard).unwrap().header().model_id, int8.model_id);
        drop(moved);
        let mut q = Queues::open(dir.path(), settings()).unwrap();
        let batch = q.next_batch(QueueKey::Embeddings).unwrap().unwrap();
        let shard = fruits_formats::Shard::decode(&batch.shard).unwrap();
        assert_eq!((shard.header().model_id, shard.header().rows), (settings().model_id, 1), "kept, as its model's");
    }
}
