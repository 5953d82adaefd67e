//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::OutputFormat;
use fruits_sim::emulate::Shots;

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
    /// Simulate phones: each embeds photos from a dataset with the SDK, uploads them
    /// to a local ingest, syncs the projection the aggregator publishes, then
    /// recognises more photos; prints what each phone did (JSON).
    Emulate(EmulateArgs),
    /// Build a Fruits-360-style data set from photos, or describe one.
    Dataset(crate::commands::dataset::DatasetArgs),
    /// The whole system on the embedded default: data set, emulated phones, PCA and
    /// recognition head, recognition of held-out photos, report.
    Demo(crate::commands::demo::DemoArgs),
    /// What is this fruit? Recognises photos offline, through the code a phone runs,
    /// with a phone's installed projection (`--phone`) or a published one
    /// (`--artifact`): the answer or "unknown", the calibrated confidence, the top 3 and
    /// the fruit's names, family, season and nutrition.
    Recognize(crate::commands::recognize::RecognizeArgs),
}

/// Arguments of `fruits emulate`.
#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// Photos in the Fruits-360 layout: `Training/<Class>/*` or `<Class>/*`.
    #[arg(long)]
    pub dataset: PathBuf,

    /// A fresh directory for the phones' storage, the local cloud's store and the
    /// publisher key.
    #[arg(long)]
    pub workdir: PathBuf,

    /// Model manifest (default: models/ as for `fruits embed`).
    #[arg(long)]
    pub manifest: Option<PathBuf>,

    /// Simulated phones.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub phones: u32,

    /// Photos each phone takes before the first sync, cycling through its own (the
    /// views of the source photos dealt to it), or `all` for each of them once.
    #[arg(long, default_value = "4")]
    pub photos_before_sync: Shots,

    /// Photos each phone takes after it (going on through its own), or `all`.
    #[arg(long, default_value = "2")]
    pub photos_after_sync: Shots,

    /// Components of the projection the aggregator publishes.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub k: u32,

    /// Rows per uploaded shard.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_rows: u32,
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

    /// Keep the decluttered model graph in this directory, so later runs start
    /// faster (written on the first run, checked on every run).
    #[arg(long)]
    pub plan_cache: Option<PathBuf>,

    /// Decode large JPEGs at full size instead of DCT-downscaling them.
    #[arg(long)]
    pub no_jpeg_dct_scaling: bool,

    /// Say on stderr how the engine runs: the model, where its plan came from, and
    /// whether JPEGs decode with libjpeg-turbo's SIMD kernels.
    #[arg(long, short)]
    pub verbose: bool,
}
