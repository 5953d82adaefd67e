//! `fruits dataset`: build a Fruits-360-style set from photos, or describe one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use fruits_sim::dataset::{self, BuildOptions};

/// Arguments of `fruits dataset`.
#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: DatasetAction,
}

/// `fruits dataset` actions.
#[derive(Debug, Subcommand)]
pub enum DatasetAction {
    /// Render many views of each photo (rotation, zoom and crop, lighting,
    /// background) into `<out>/Training/<Class>/` and `<out>/Test/<Class>/`; the
    /// class comes from each file name (`apple_fuji.png` -> `Apple`).
    Build {
        /// Folder of photos with transparent backgrounds (e.g. data/tuxpaint/fruit).
        #[arg(long, default_value = "data/tuxpaint/fruit")]
        photos: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Views per training photo.
        #[arg(long, default_value_t = BuildOptions::default().views, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        views: u32,
        /// Percent of views (one-photo classes) or photos (several-photo classes) for Test/.
        #[arg(long, default_value_t = BuildOptions::default().test_percent, value_parser = clap::value_parser!(u32).range(0..=90))]
        test_percent: u32,
        /// Side of the square images, pixels.
        #[arg(long, default_value_t = BuildOptions::default().size, value_parser = clap::value_parser!(u32).range(16..=1024))]
        size: u32,
    },
    /// Count the images per class of a Fruits-360 layout (JSON).
    Describe {
        /// The folder holding Training/ and Test/.
        root: PathBuf,
    },
}

/// Runs `fruits dataset`.
pub fn run(args: &DatasetArgs) -> Result<ExitCode> {
    let images = match &args.action {
        DatasetAction::Build { photos, out, views, test_percent, size } => {
            let options = BuildOptions { views: *views, test_percent: *test_percent, size: *size };
            dataset::build(photos, out, &options)?
        }
        DatasetAction::Describe { root } => dataset::read_layout(root)?,
    };
    println!("{}", serde_json::to_string_pretty(&dataset::summarise(&images))?);
    Ok(ExitCode::SUCCESS)
}
