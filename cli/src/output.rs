//! Pluggable embedding writers. `fruits embed` hands each record to an
//! [`EmbeddingSink`]; each format is a variant of [`OutputFormat`] and a sink.

mod shards;

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::args::EmbedArgs;
pub use shards::ShardWriter;

/// Output formats of `fruits embed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line: `{"path", "dim", "embedding"}`.
    Jsonl,
    /// Binary embedding shards (the format phones upload), written into `--out DIR`.
    Shard,
}

/// One embedded image.
#[derive(Debug, Serialize)]
pub struct EmbeddingRecord<'a> {
    /// Path of the image as walked.
    pub path: &'a str,
    /// Embedding dimension.
    pub dim: usize,
    /// The embedding.
    pub embedding: &'a [f32],
}

/// Where embeddings go.
pub trait EmbeddingSink {
    /// Writes one record.
    fn write(&mut self, record: &EmbeddingRecord<'_>) -> Result<()>;
    /// Flushes and closes the output.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// JSON-lines writer over any `Write`.
pub struct JsonLines<W: Write> {
    out: W,
}

impl<W: Write> EmbeddingSink for JsonLines<W> {
    fn write(&mut self, record: &EmbeddingRecord<'_>) -> Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// Opens the sink `args` ask for, for embeddings of the model `model_id` (hex sha256).
pub fn open(args: &EmbedArgs, model_id: &str) -> Result<Box<dyn EmbeddingSink>> {
    Ok(match args.format {
        OutputFormat::Jsonl => {
            let out: Box<dyn Write> = match &args.out {
                Some(path) => Box::new(BufWriter::new(
                    File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(BufWriter::new(std::io::stdout().lock())),
            };
            Box::new(JsonLines { out })
        }
        OutputFormat::Shard => {
            let dir = args.out.as_deref().context("--format shard needs --out DIR")?;
            Box::new(ShardWriter::create(dir, model_id, args)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_record_shape() {
        let mut sink = JsonLines { out: Vec::new() };
        sink.write(&EmbeddingRecord { path: "a.png", dim: 2, embedding: &[0.5, 1.0] }).unwrap();
        assert_eq!(String::from_utf8(sink.out).unwrap(), "{\"path\":\"a.png\",\"dim\":2,\"embedding\":[0.5,1.0]}\n");
    }
}
