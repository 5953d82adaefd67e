//! The shard sink: embeddings batched into binary shards, `--shard-rows` at a time
//! ([`ShardBuilder`]), written as `<out>/<device>/<batch>.shard`
//! ([`layout::device_batch_key`], what `aggregator run --input <out>` reads).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use fruits_formats::shard::Push;
use fruits_formats::{Encoding, ModelId, ShardBuilder, layout};

use super::{EmbeddingRecord, EmbeddingSink};
use crate::args::EmbedArgs;

/// Writes shards of at most `shard_rows` rows into one directory.
pub struct ShardWriter {
    out: PathBuf,
    model_id: ModelId,
    device_id: String,
    shard_rows: usize,
    label_from_dir: bool,
    /// Batch ids are `<started ms>-<sequence>`: unique per invocation, sorted by time.
    started_ms: u64,
    written: usize,
    batch: Option<ShardBuilder>,
}

impl ShardWriter {
    /// Prepares `dir/<device>/` for shards of the model `model_id`.
    pub fn create(dir: &Path, model_id: &str, args: &EmbedArgs) -> Result<Self> {
        let model_id: ModelId = model_id.parse()?;
        let started_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Ok(Self {
            out: dir.to_owned(),
            model_id,
            device_id: args.device_id.clone(),
            shard_rows: args.shard_rows as usize,
            label_from_dir: args.label_from_dir,
            started_ms,
            written: 0,
            batch: None,
        })
    }

    fn seal(&mut self) -> Result<()> {
        let Some(batch) = self.batch.take() else { return Ok(()) };
        let batch_id = format!("{}-{:05}", self.started_ms, self.written);
        let path = self.out.join(layout::device_batch_key(&self.device_id, &batch_id));
        let shard = batch.finish(batch_id)?;
        fruits_durable::replace_file(&path, &shard.encode()?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.written += 1;
        Ok(())
    }
}

/// The name of the folder holding `path`, the class in the Fruits-360 layout.
fn folder_label(path: &str) -> Option<String> {
    Path::new(path).parent()?.file_name()?.to_str().map(str::to_owned)
}

impl EmbeddingSink for ShardWriter {
    fn write(&mut self, record: &EmbeddingRecord<'_>) -> Result<()> {
        let label = if self.label_from_dir { folder_label(record.path) } else { None };
        loop {
            let (model_id, device_id, rows) = (self.model_id, &self.device_id, self.shard_rows);
            let dim = u32::try_from(record.dim).context("embedding dimension")?;
            let batch = self.batch.get_or_insert_with(|| {
                ShardBuilder::new(model_id, dim, Encoding::F32, device_id.as_str()).with_max_rows(rows)
            });
            match batch.push(record.embedding, label.as_deref(), self.started_ms)? {
                Push::Added => return Ok(()),
                Push::Full if batch.is_empty() => anyhow::bail!("a row no shard can hold"),
                Push::Full => self.seal()?,
            }
        }
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.seal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_image_folder() {
        assert_eq!(folder_label("Training/Apple Braeburn/r_1_100.jpg").as_deref(), Some("Apple Braeburn"));
        assert_eq!(folder_label("lone.png"), None);
    }
}
