//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::OutputFormat;

/// Fruits: point at a fruit, learn what it is.
#[derive(Debug, Parser)]
#[command(name = "fruits", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Embed images (files or directories, walked recursively) as JSON lines
    /// `{"path", "dim", "embedding"}`.
    Embed(EmbedArgs),
}

/// Arguments of `fruits embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Image files or directories (directories are walked recursively for
    /// .jpg/.jpeg/.png/.webp/.gif/.bmp files).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,

    /// ONNX model; its manifest defaults to the same path with a .json extension.
    #[arg(long)]
    pub model: Option<PathBuf>,

    /// Model manifest (JSON). Default: next to --model, else
    /// $FRUITS_MODEL_DIR, ./models or models/ near the executable.
    #[arg(long)]
    pub manifest: Option<PathBuf>,

    /// Output file for JSON lines (default: stdout); output directory for shards.
    #[arg(long, short)]
    pub out: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Jsonl)]
    pub format: OutputFormat,

    /// Shard output: the device id written into each shard.
    #[arg(long, default_value = "desktop")]
    pub device_id: String,

    /// Shard output: most rows per shard.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=262_144))]
    pub shard_rows: u32,

    /// Shard output: label each row with the name of its image's folder
    /// (the Fruits-360 layout, `Training/<Class>/*.jpg`).
    #[arg(long)]
    pub label_from_dir: bool,

    /// Images per model run.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub batch: u32,

    /// Decode large JPEGs at full size instead of DCT-downscaling them.
    #[arg(long)]
    pub no_jpeg_dct_scaling: bool,
}
