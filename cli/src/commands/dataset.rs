//! `fruits dataset`: build a Fruits-360-style set from photos, or describe one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use fruits_sim::dataset::augment::{Families, Family};
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
    /// Render many views of each photo into `<out>/Training/<Class>/` and
    /// `<out>/Test/<Class>/`: plain ones (rotation, zoom and crop, lighting, a plain
    /// background) and ones as a phone would take them (a cluttered background, the fruit
    /// off-centre, fingers, blur, colour cast, tilt, JPEG quality 30-95); the class comes
    /// from each file name (`apple_fuji.png` -> `Apple`).
    Build {
        /// Folder of photos with transparent backgrounds (e.g. data/tuxpaint/fruit).
        #[arg(long, default_value = "data/tuxpaint/fruit")]
        photos: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Plain views per training photo.
        #[arg(long, default_value_t = BuildOptions::default().views, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        views: u32,
        /// Phone-like views per training photo.
        #[arg(long, default_value_t = BuildOptions::default().phone_views, value_parser = clap::value_parser!(u32).range(0..=10_000))]
        phone_views: u32,
        /// Percent of views (one-photo classes) or photos (several-photo classes) for Test/.
        #[arg(long, default_value_t = BuildOptions::default().test_percent, value_parser = clap::value_parser!(u32).range(0..=90))]
        test_percent: u32,
        /// Side of the plain views, pixels.
        #[arg(long, default_value_t = BuildOptions::default().size, value_parser = clap::value_parser!(u32).range(16..=1024))]
        size: u32,
        /// Side of the phone-like views, pixels.
        #[arg(long, default_value_t = BuildOptions::default().phone_size, value_parser = clap::value_parser!(u32).range(32..=2048))]
        phone_size: u32,
        /// Cut-out photos of things that are not fruit, for the phone-like views'
        /// cluttered backgrounds (scripts/fetch-photos.sh fetches them).
        #[arg(long, default_value = "data/tuxpaint/clutter")]
        clutter: PathBuf,
        /// Phone-like views on plain backgrounds (no clutter photos needed).
        #[arg(long)]
        no_clutter: bool,
        /// Leave a family of phone conditions out (repeatable): clutter, framing,
        /// occlusion, blur, light, perspective or jpeg.
        #[arg(long)]
        without: Vec<Family>,
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
        DatasetAction::Build {
            photos,
            out,
            views,
            phone_views,
            test_percent,
            size,
            phone_size,
            clutter,
            no_clutter,
            without,
        } => {
            let families = without.iter().fold(Families::all(), |f, w| f.without(*w));
            let clutter = match no_clutter {
                true => None,
                false => Some(clutter.clone()),
            };
            let options = BuildOptions {
                views: *views,
                phone_views: *phone_views,
                test_percent: *test_percent,
                size: *size,
                phone_size: *phone_size,
                families,
                clutter,
            };
            dataset::build(photos, out, &options)?
        }
        DatasetAction::Describe { root } => dataset::read_layout(root)?,
    };
    println!("{}", serde_json::to_string_pretty(&dataset::summarise(&images))?);
    Ok(ExitCode::SUCCESS)
}
