//! The desktop emulator: N simulated phones against a local cloud, each running
//! the very SDK code path apps run ([`FruitsClient`]), so that the end-to-end demo
//! and tests exercise exactly what ships.
//!
//! One run, in phases, every phone in parallel:
//! 1. **capture**: each phone takes `photos_before_sync` photos from the dataset
//!    (label = the photo's folder), embeds them and queues the labelled embeddings;
//!    each phone holds the views of its own source photos, none of another phone's
//!    ([`own_photos`]), so the aggregator calibrates on photos its head never saw;
//! 2. **upload**: each phone flushes its queue to ingest (loopback, local storage);
//! 3. **aggregate**: the aggregator runs over everything received and publishes a
//!    signed projection;
//! 4. **sync**: each phone fetches, verifies and installs it;
//! 5. **recognise**: each phone takes `photos_after_sync` more photos, recognises
//!    them offline and queues them, now as projected codes, then flushes again.
//!
//! The report says what each phone did and what the cloud received from it.

mod dataset;
mod stack;

pub use dataset::{Photo, Shots, list_photos, own_photos, photos_for, source_photo};
pub use stack::LocalStack;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fruits_aggregator::AggregatorError;
use fruits_core::Embedder;
use fruits_core::client::{ClientError, DeviceConfig, FruitsClient, ModelSource, QueueKey, load_embedder};
use fruits_core::uploader::Backoff;
use fruits_formats::layout;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Why an emulation stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmulateError {
    /// The configuration cannot be run.
    #[error("{0}")]
    Config(String),
    /// The working directory or a photo could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The photos could not be listed.
    #[error(transparent)]
    Dataset(#[from] crate::dataset::DatasetError),
    /// The model could not be loaded.
    #[error("loading the model: {0}")]
    Model(#[from] fruits_core::EmbedError),
    /// A phone's SDK call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The local cloud failed (ingest's start, the aggregator run, reading what it stored).
    #[error(transparent)]
    Cloud(#[from] AggregatorError),
    /// The publisher's key or the catalogue could not be made.
    #[error("the local cloud: {0}")]
    Setup(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmulateError {
    move |source| EmulateError::Io { what: what.into(), source }
}

/// What to emulate.
#[derive(Debug, Clone)]
pub struct EmulateConfig {
    /// Photos in the Fruits-360 layout (`Training/<Class>/*` or `<Class>/*`).
    pub dataset: PathBuf,
    /// An empty (or missing) directory for the phones' storage, the cloud's store
    /// and the publisher key.
    pub workdir: PathBuf,
    /// The embedding model.
    pub model: ModelSource,
    /// Simulated phones.
    pub phones: usize,
    /// Photos each phone takes before the first sync (uploaded as embeddings).
    pub photos_before_sync: Shots,
    /// Photos each phone takes after it (recognised, uploaded as codes).
    pub photos_after_sync: Shots,
    /// Components of the published projection.
    pub k: u32,
    /// Rows per uploaded shard.
    pub batch_rows: usize,
}

/// What one phone did, and what the cloud stored from it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PhoneReport {
    /// The phone's device id.
    pub device_id: String,
    /// Photos taken.
    pub photos: usize,
    /// Of those, before the sync.
    pub photos_before_sync: usize,
    /// Photos that could not be embedded (each counted, none queued).
    pub failed_photos: usize,
    /// Full embeddings queued (before the sync).
    pub embeddings_queued: usize,
    /// Projected codes queued (after the sync).
    pub codes_queued: usize,
    /// Batches uploaded and acknowledged.
    pub batches_uploaded: usize,
    /// Entries those batches held.
    pub entries_uploaded: usize,
    /// Embedding rows the cloud stored for this device.
    pub embeddings_stored: usize,
    /// Code rows the cloud stored for this device.
    pub codes_stored: usize,
    /// The projection installed at the end.
    pub projection_version: Option<u32>,
    /// Photos recognised after the sync (with a label, not "unknown").
    pub recognised: usize,
    /// Of those, recognised as their folder's class.
    pub recognised_correctly: usize,
    /// Entries still queued at the end.
    pub still_queued: usize,
}

/// What the whole run did.
#[derive(Debug, Clone, Serialize)]
pub struct EmulateReport {
    /// Every phone, in device id order.
    pub phones: Vec<PhoneReport>,
    /// The latest projection the aggregator published.
    pub latest_projection: Option<u32>,
    /// The publisher's public key, hex (what apps embed).
    pub public_key: String,
    /// Wall time of the run, milliseconds.
    pub elapsed_ms: u64,
}

/// One simulated phone: its client and its running tally.
struct Phone {
    client: FruitsClient,
    report: PhoneReport,
}

/// The device secret of phone `i` in this workdir (registered with ingest).
fn device_secret(workdir: &std::path::Path, device_id: &str) -> Vec<u8> {
    Sha256::digest(format!("{}|{device_id}|{:?}", workdir.display(), Instant::now()).as_bytes()).to_vec()
}

/// Runs the emulation described in the module docs.
pub fn run(config: &EmulateConfig) -> Result<EmulateReport, EmulateError> {
    let start = Instant::now();
    if config.phones == 0 || config.batch_rows == 0 {
        return Err(EmulateError::Config("phones and batch_rows must be positive".into()));
    }
    if fs::read_dir(&config.workdir).is_ok_and(|mut d| d.next().is_some()) {
        let workdir = config.workdir.display();
        return Err(EmulateError::Config(format!(
            "{workdir} is not empty: the emulator needs a fresh working directory"
        )));
    }
    fs::create_dir_all(&config.workdir).map_err(io(format!("creating {}", config.workdir.display())))?;
    let photos = list_photos(&config.dataset)?;
    let embedder = load_embedder(&config.model, None)?;
    let model_id = embedder.model_id().parse().map_err(|e| EmulateError::Setup(format!("model id: {e}")))?;
    let dim = u32::try_from(embedder.dim()).map_err(|_| EmulateError::Config("embedding dimension".into()))?;
    let ids: Vec<String> = (0..config.phones).map(|i| format!("phone-{i:02}")).collect();
    let secrets: HashMap<String, Vec<u8>> =
        ids.iter().map(|id| (id.clone(), device_secret(&config.workdir, id))).collect();
    let stack = LocalStack::start(&config.workdir, secrets.clone(), model_id, dim)?;
    let mut phones = ids
        .iter()
        .map(|id| open_phone(config, &stack, id, secrets[id].clone(), &embedder))
        .collect::<Result<Vec<Phone>, EmulateError>>()?;

    phones.par_iter_mut().enumerate().try_for_each(|(i, phone)| {
        let taken = photos_for(&photos, i, config.phones, 0, config.photos_before_sync);
        phone.report.photos_before_sync = taken.len();
        capture(phone, &taken, false)?;
        flush(phone)
    })?;
    let latest = stack.aggregate("emulate-1", config.k)?;
    phones.par_iter_mut().enumerate().try_for_each(|(i, phone)| -> Result<(), EmulateError> {
        phone.client.sync_model()?;
        let before = phone.report.photos_before_sync;
        let taken = photos_for(&photos, i, config.phones, before, config.photos_after_sync);
        capture(phone, &taken, true)?;
        flush(phone)
    })?;

    let embeddings = stack.rows_by_device(layout::INCOMING_PREFIX)?;
    let codes = stack.rows_by_device(layout::CODES_PREFIX)?;
    let reports = phones
        .into_iter()
        .map(|mut phone| {
            let status = phone.client.status();
            let r = &mut phone.report;
            r.embeddings_stored = embeddings.get(&r.device_id).copied().unwrap_or(0);
            r.codes_stored = codes.get(&r.device_id).copied().unwrap_or(0);
            r.projection_version = status.projection_version;
            r.still_queued = status.queued;
            phone.report
        })
        .collect();
    Ok(EmulateReport {
        phones: reports,
        latest_projection: latest,
        public_key: hex::encode(stack.public_key()),
        elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

fn open_phone(
    config: &EmulateConfig,
    stack: &LocalStack,
    id: &str,
    secret: Vec<u8>,
    embedder: &Embedder,
) -> Result<Phone, EmulateError> {
    let mut device =
        DeviceConfig::new(config.workdir.join("phones").join(id), stack.url.clone(), id, secret, stack.public_key());
    device.batch_rows = config.batch_rows;
    device.backoff = Backoff { base: Duration::from_millis(50), max: Duration::from_secs(1), attempts: 5 };
    let client = FruitsClient::with_embedder(device, embedder.clone())?;
    Ok(Phone { client, report: PhoneReport { device_id: id.to_owned(), ..PhoneReport::default() } })
}

/// Takes `photos`: embeds each once, recognises it when asked, queues it labelled.
fn capture(phone: &mut Phone, photos: &[&Photo], recognise: bool) -> Result<(), EmulateError> {
    for photo in photos {
        phone.report.photos += 1;
        let bytes = fs::read(&photo.path).map_err(io(format!("reading {}", photo.path.display())))?;
        let embedding = match phone.client.embed(&bytes) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(photo = %photo.path.display(), "{e}");
                phone.report.failed_photos += 1;
                continue;
            }
        };
        if recognise {
            match phone.client.recognize_embedding(&embedding) {
                Ok(r) => {
                    phone.report.recognised += usize::from(r.label.is_some());
                    phone.report.recognised_correctly += usize::from(r.label.as_deref() == Some(photo.label.as_str()));
                }
                Err(ClientError::NoRecognizer(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match phone.client.enqueue(&embedding, Some(&photo.label))? {
            QueueKey::Embeddings => phone.report.embeddings_queued += 1,
            QueueKey::Codes { .. } => phone.report.codes_queued += 1,
        }
    }
    Ok(())
}

fn flush(phone: &mut Phone) -> Result<(), EmulateError> {
    let flushed = phone.client.flush()?;
    phone.report.batches_uploaded += flushed.batches;
    phone.report.entries_uploaded += flushed.entries;
    Ok(())
}
