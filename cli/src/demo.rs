//! `fruits demo`: the whole system on the embedded default, in one command.
//!
//! 1. builds the sample data set from the real fruit photos ([`fruits_sim::dataset`]);
//! 2. emulated phones embed its training views and upload them through ingest, the
//!    aggregator runs the PCA and trains the recognition head, the phones sync
//!    ([`fruits_sim::emulate`], the SDK's own code path);
//! 3. a synced phone recognises the held-out views (`Test/`) and photos of
//!    vegetables it never learnt, offline, through the SDK;
//! 4. the report is written (`aggregator report`'s library function).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use fruits_aggregator::storage::LocalDir;
use fruits_core::client::{DeviceConfig, FruitsClient, ModelSource, load_embedder};
use fruits_head::HeadOptions;
use serde::Serialize;

use fruits_sim::dataset::{self, BuildOptions, LabelledImage, plan::Side};
use fruits_sim::emulate::{self, EmulateConfig, Shots};

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Fruit photos (one class per file name).
    pub fruit_photos: PathBuf,
    /// Folders of photos of things that are not fruit, for the "unknown" check.
    pub other_photos: Vec<PathBuf>,
    /// Cut-out photos of everyday things for the phone-like views' cluttered
    /// backgrounds (never among the photos checked).
    pub clutter: PathBuf,
    /// A folder for this run (created; must not hold a previous run).
    pub workdir: PathBuf,
    /// The embedding model.
    pub model: ModelSource,
    /// TrueType font for the report's charts.
    pub font: PathBuf,
    /// Plain views per training photo.
    pub views: u32,
    /// Phone-like views per training photo.
    pub phone_views: u32,
    /// Emulated phones.
    pub phones: usize,
    /// Components of the published projection.
    pub k: u32,
}

/// How recognition went on one set of photos.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecognitionTally {
    /// Photos recognised.
    pub photos: usize,
    /// Most likely class right (top-1), whatever the confidence.
    pub top1_correct: usize,
    /// Answered with a class (not "unknown").
    pub known: usize,
    /// Answered with the right class.
    pub known_correct: usize,
    /// Answered "unknown" or with a confidence below one half.
    pub unknown_or_unsure: usize,
}

impl RecognitionTally {
    /// Adds another tally's counts.
    pub fn add(&mut self, other: &RecognitionTally) {
        self.photos += other.photos;
        self.top1_correct += other.top1_correct;
        self.known += other.known;
        self.known_correct += other.known_correct;
        self.unknown_or_unsure += other.unknown_or_unsure;
    }

    /// `top1_correct / photos`.
    pub fn top1_accuracy(&self) -> f64 {
        self.top1_correct as f64 / self.photos.max(1) as f64
    }

    /// `unknown_or_unsure / photos`.
    pub fn unknown_or_unsure_rate(&self) -> f64 {
        self.unknown_or_unsure as f64 / self.photos.max(1) as f64
    }
}

/// What the demo did.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Training and test views in the data set.
    pub dataset: dataset::Summary,
    /// The projection the phones installed.
    pub projection_version: Option<u32>,
    /// Held-out fruit views recognised on a synced phone.
    pub heldout: RecognitionTally,
    /// Photos of vegetables and other things (not fruit) recognised on the same phone.
    pub not_fruit: RecognitionTally,
    /// The report's storage keys.
    pub report_files: Vec<PathBuf>,
    /// Components for 90/95/99% of the variance.
    pub components_for: Vec<fruits_pca::finalize::VarianceThreshold>,
    /// Held-out accuracy per k from the report (the aggregator's own split).
    pub accuracy_vs_k: Vec<fruits_aggregator::report::data::AccuracyAtK>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Runs the demo.
pub fn run(config: &DemoConfig) -> Result<DemoReport> {
    let start = Instant::now();
    if fs::read_dir(&config.workdir).is_ok_and(|mut d| d.next().is_some()) {
        anyhow::bail!("{} is not empty: the demo needs a fresh folder", config.workdir.display());
    }
    let font = fs::read(&config.font).with_context(|| {
        format!("reading the font {} (Debian: apt-get install fonts-dejavu-core)", config.font.display())
    })?;
    eprintln!("[1/4] building the data set from {}", config.fruit_photos.display());
    let options = BuildOptions {
        views: config.views,
        phone_views: config.phone_views,
        clutter: Some(config.clutter.clone()),
        ..BuildOptions::default()
    };
    let set_dir = config.workdir.join("dataset");
    let images = dataset::build(&config.fruit_photos, &set_dir, &options)
        .context("building the data set (scripts/fetch-photos.sh fetches the photos into data/tuxpaint)")?;
    let summary = dataset::summarise(&images);
    let training = summary.training;
    eprintln!("      {} training and {} test views of {} classes", training, summary.test, summary.classes.len());

    eprintln!("[2/4] {} phones embed and upload, the aggregator trains, the phones sync", config.phones);
    let emulator_dir = config.workdir.join("emulator");
    let emulated = emulate::run(&EmulateConfig {
        dataset: set_dir.clone(),
        workdir: emulator_dir.clone(),
        model: config.model.clone(),
        phones: config.phones,
        photos_before_sync: Shots::All,
        photos_after_sync: Shots::Count(1),
        k: config.k,
        batch_rows: 64,
    })?;

    eprintln!("[3/4] a synced phone recognises the held-out views and photos of things that are not fruit");
    let phone = synced_phone(&emulator_dir, &emulated.public_key, &config.model)?;
    let heldout: Vec<LabelledImage> = images.into_iter().filter(|i| i.side == Side::Test).collect();
    let heldout = recognise(&phone, &heldout)?;
    let mut not_fruit = RecognitionTally::default();
    for (i, folder) in config.other_photos.iter().enumerate() {
        let others_dir = config.workdir.join(format!("not-fruit-{i}"));
        let views = BuildOptions { views: 1, phone_views: 2, test_percent: 0, ..options.clone() };
        not_fruit.add(&recognise(&phone, &dataset::build(folder, &others_dir, &views)?)?);
    }

    eprintln!("[4/4] writing the report");
    let store = LocalDir::new(emulator_dir.join("store"));
    let written = fruits_aggregator::report::write(&store, &store, "demo", None, font, &HeadOptions::default())?;
    Ok(DemoReport {
        dataset: summary,
        projection_version: emulated.latest_projection,
        heldout,
        not_fruit,
        report_files: written.keys.iter().map(|k| emulator_dir.join("store").join(k)).collect(),
        components_for: written.components_for,
        accuracy_vs_k: written.accuracy,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Phone 0 of the emulation, reopened offline with the projection it installed.
fn synced_phone(emulator_dir: &Path, public_key_hex: &str, model: &ModelSource) -> Result<FruitsClient> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(public_key_hex, &mut key).context("the emulator's public key")?;
    // Offline: recognition needs neither the ingest URL nor the device secret.
    let device =
        DeviceConfig::new(emulator_dir.join("phones/phone-00"), "http://127.0.0.1:9", "phone-00", Vec::new(), key);
    Ok(FruitsClient::with_embedder(device, load_embedder(model, None)?)?)
}

/// Recognises every image on `phone`, tallying against its class.
fn recognise(phone: &FruitsClient, images: &[LabelledImage]) -> Result<RecognitionTally> {
    let mut tally = RecognitionTally::default();
    for image in images {
        let bytes = fs::read(&image.path).with_context(|| format!("reading {}", image.path.display()))?;
        let r = phone.recognize(&bytes)?;
        tally.photos += 1;
        tally.top1_correct += usize::from(r.top.first().is_some_and(|(class, _)| *class == image.class));
        tally.known += usize::from(r.label.is_some());
        tally.known_correct += usize::from(r.label.as_deref() == Some(image.class.as_str()));
        tally.unknown_or_unsure += usize::from(r.label.is_none() || r.confidence < 0.5);
    }
    Ok(tally)
}
