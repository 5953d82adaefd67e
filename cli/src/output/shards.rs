//! The shard sink: embeddings batched into binary shards, `--shard-rows` at a time,
//! written as `<out>/<device>/<batch>.shard` (what `aggregator run --input <out>` reads).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use fruits_formats::shard::NO_LABEL;
use fruits_formats::{Encoding, ModelId, Shard, ShardHeader};

use super::{EmbeddingRecord, EmbeddingSink};
use crate::args::EmbedArgs;

/// Writes shards of at most `shard_rows` rows into one directory.
pub struct ShardWriter {
    dir: PathBuf,
    model_id: ModelId,
    device_id: String,
    shard_rows: usize,
    label_from_dir: bool,
    /// Batch ids are `<started ms>-<sequence>`: unique per invocation, sorted by time.
    started_ms: u64,
    written: usize,
    dim: usize,
    values: Vec<f32>,
    labels: Vec<Option<String>>,
}

impl ShardWriter {
    /// Prepares `dir/<device>/` for shards of the model `model_id`.
    pub fn create(dir: &Path, model_id: &str, args: &EmbedArgs) -> Result<Self> {
        let model_id: ModelId = model_id.parse()?;
        let dir = dir.join(&args.device_id);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let started_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Ok(Self {
            dir,
            model_id,
            device_id: args.device_id.clone(),
            shard_rows: args.shard_rows as usize,
            label_from_dir: args.label_from_dir,
            started_ms,
            written: 0,
            dim: 0,
            values: Vec::new(),
            labels: Vec::new(),
        })
    }

    fn seal(&mut self) -> Result<()> {
        if self.labels.is_empty() {
            return Ok(());
        }
        let batch_id = format!("{}-{:05}", self.started_ms, self.written);
        let (vocabulary, labels) = label_table(&self.labels, self.label_from_dir);
        let header = ShardHeader {
            model_id: self.model_id,
            dim: self.dim as u32,
            rows: self.labels.len() as u32,
            encoding: Encoding::F32,
            device_id: self.device_id.clone(),
            batch_id: batch_id.clone(),
            created_unix_ms: self.started_ms,
            label_vocabulary: vocabulary,
        };
        let shard = Shard::new(header, std::mem::take(&mut self.values), labels)?;
        let path = self.dir.join(format!("{batch_id}.shard"));
        std::fs::write(&path, shard.encode()).with_context(|| format!("cannot write {}", path.display()))?;
        self.labels.clear();
        self.written += 1;
        Ok(())
    }
}

/// The shard's label vocabulary (sorted) and per-row indices; none when unlabelled.
fn label_table(rows: &[Option<String>], labelled: bool) -> (Vec<String>, Option<Vec<u16>>) {
    if !labelled {
        return (Vec::new(), None);
    }
    let vocabulary: BTreeMap<&str, u16> = BTreeMap::from_iter(
        rows.iter().flatten().map(String::as_str).collect::<std::collections::BTreeSet<_>>().into_iter().zip(0..),
    );
    let indices = rows.iter().map(|l| l.as_deref().map_or(NO_LABEL, |l| vocabulary[l])).collect();
    (vocabulary.into_keys().map(str::to_owned).collect(), Some(indices))
}

/// The name of the folder holding `path`, the class in the Fruits-360 layout.
fn folder_label(path: &str) -> Option<String> {
    Path::new(path).parent()?.file_name()?.to_str().map(str::to_owned)
}

impl EmbeddingSink for ShardWriter {
    fn write(&mut self, record: &EmbeddingRecord<'_>) -> Result<()> {
        ensure!(self.dim == 0 || self.dim == record.dim, "embedding dimension changed");
        self.dim = record.dim;
        self.values.extend_from_slice(record.embedding);
        self.labels.push(if self.label_from_dir { folder_label(record.path) } else { None });
        if self.labels.len() == self.shard_rows {
            self.seal()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.seal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_image_folder_and_index_a_sorted_vocabulary() {
        assert_eq!(folder_label("Training/Apple Braeburn/r_1_100.jpg").as_deref(), Some("Apple Braeburn"));
        assert_eq!(folder_label("lone.png"), None);
        let rows = vec![Some("pear".to_string()), None, Some("apple".to_string()), Some("pear".to_string())];
        let (vocabulary, indices) = label_table(&rows, true);
        assert_eq!(vocabulary, ["apple", "pear"]);
        assert_eq!(indices.unwrap(), [1, NO_LABEL, 0, 1]);
        assert_eq!(label_table(&rows, false), (Vec::new(), None));
    }
}
