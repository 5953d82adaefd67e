//! `fruits demo`: the whole system in one command ([`crate::demo`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Args;
use fruits_core::client::ModelSource;
use fruits_formats::layout;

use crate::demo::{self, DemoConfig};
use crate::model_dir;

/// Arguments of `fruits demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder under which this run's folder `run-<unix seconds>` is created.
    #[arg(long, default_value = "fruits-demo")]
    pub workdir: PathBuf,
    /// Fruit photos (class from each file name).
    #[arg(long, default_value = "data/tuxpaint/fruit")]
    pub photos: PathBuf,
    /// Folders of photos of things that are not fruit (expected to come back "unknown").
    #[arg(long, default_values = ["data/tuxpaint/vegetables", "data/tuxpaint/objects"])]
    pub not_fruit: Vec<PathBuf>,
    /// Cut-out photos of everyday things for the phone-like views' backgrounds.
    #[arg(long, default_value = "data/tuxpaint/clutter")]
    pub clutter: PathBuf,
    /// Model manifest (default: models/ as for `fruits embed`).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// TrueType font for the report's charts.
    #[arg(long, default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")]
    pub font: PathBuf,
    /// Plain views rendered per training photo.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(5..=1000))]
    pub views: u32,
    /// Phone-like views rendered per training photo.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub phone_views: u32,
    /// Emulated phones.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub phones: u32,
    /// Components of the published projection (the sample set needs 186 for 95% of
    /// its variance: the report prints the k for 90/95/99%).
    #[arg(long, default_value_t = 192, value_parser = clap::value_parser!(u32).range(3..=1024))]
    pub k: u32,
}

/// Runs `fruits demo`: progress on stderr, the full report as JSON on stdout, then
/// where the report is and the accuracy.
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let location = model_dir::resolve(None, args.manifest.as_deref())?;
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let config = DemoConfig {
        fruit_photos: args.photos.clone(),
        other_photos: args.not_fruit.clone(),
        clutter: args.clutter.clone(),
        workdir: args.workdir.join(format!("run-{seconds}")),
        model: ModelSource::ManifestPath(location.manifest),
        font: args.font.clone(),
        views: args.views,
        phone_views: args.phone_views,
        phones: args.phones as usize,
        k: args.k,
    };
    let report = demo::run(&config)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    let k95 = report.components_for.iter().find(|t| (t.share - 0.95).abs() < 1e-9).map(|t| t.components);
    let store = config.workdir.join("emulator/store");
    let phone = config.workdir.join("emulator/phones/phone-00");
    eprintln!("\nreport: {}", store.join(layout::report_key("demo", "index.html")).display());
    eprintln!("picture: {}", store.join(layout::report_key("demo", "pca_3d.png")).display());
    eprintln!(
        "held-out fruit views: top-1 accuracy {:.1}% ({} of {}), {} answered with a fruit name, {} of them right",
        100.0 * report.heldout.top1_accuracy(),
        report.heldout.top1_correct,
        report.heldout.photos,
        report.heldout.known,
        report.heldout.known_correct
    );
    eprintln!(
        "not fruit (vegetables, other things): {:.1}% unknown or below 50% confidence ({} of {})",
        100.0 * report.not_fruit.unknown_or_unsure_rate(),
        report.not_fruit.unknown_or_unsure,
        report.not_fruit.photos
    );
    eprintln!(
        "what is this fruit? try: cargo run --release -p fruits-cli -- recognize --phone {} samples/",
        phone.display()
    );
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "none".into());
    eprintln!(
        "k for 95% of the variance: {}; projection version {} with k = {}; {:.0} s",
        or_none(k95.map(|k| k.to_string())),
        or_none(report.projection_version.map(|v| v.to_string())),
        args.k,
        report.seconds
    );
    Ok(ExitCode::SUCCESS)
}
