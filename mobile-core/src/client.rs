//! [`FruitsClient`]: the SDK code path. One object per app (or simulated phone)
//! that embeds photos, recognises fruits offline, queues embeddings for upload,
//! flushes them to ingest and syncs the published projection. The UniFFI bindings
//! wrap it method for method; the desktop emulator drives it directly.
//!
//! **Threads.** Every method takes `&self`; the client is `Send + Sync`. Embedding
//! and recognition take no lock (the model is immutable; the installed projection
//! is an `Arc` swapped under a short read/write lock). Queues sit behind a mutex
//! held only for in-memory work and one local `fsync`, never across the network,
//! so `enqueue` and `status` never wait on a `flush` in progress. Two flushes, or
//! two syncs, run one after the other.
//!
//! **Recognition** runs offline on the installed projection's recognition head, with
//! the classes taught on the device ([`FruitsClient::teach`]) imprinted into it
//! ([`crate::recognizer`]). Before the first sync, or when the aggregator saw no
//! labelled embeddings, only taught classes are recognised; with none taught either,
//! it answers [`ClientError::NoProjection`] or [`ClientError::NoRecognizer`].
//!
//! **Codes after sync.** Until a projection is installed, `enqueue` queues full
//! `f32` embeddings (what the aggregator's PCA reads). Once one is installed, it
//! queues the `k` codes made with it instead (uploaded as `f16`, tagged with the
//! projection version). Entries queued before a sync keep their form.

mod config;
mod queues;

pub use config::{DeviceConfig, ModelSource};
pub use queues::QueueKey;

use crate::embedder::{Embedder, EmbedderOptions};
use crate::error::EmbedError;
use crate::manifest::ModelManifest;
use crate::queue::QueueError;
use crate::recognizer::{Recognition, RecognizeError, Recognizer};
use crate::sync::{ModelSync, Projector, SyncConfig, SyncError, SyncOutcome};
use crate::taught::{TaughtClasses, TaughtError};
use crate::uploader::{UploadError, Uploader, UploaderConfig};
use fruits_formats::ModelId;
use queues::{QueueSettings, Queues};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The photo or the model failed (decode, size, inference, manifest).
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// The upload queue refused or failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// An upload failed; the batch stays queued.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// A projection sync failed; the installed projection is unchanged.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The embedding could not be recognised.
    #[error(transparent)]
    Recognize(#[from] RecognizeError),
    /// A class could not be taught, or the taught classes stored.
    #[error(transparent)]
    Taught(#[from] TaughtError),
    /// No projection is installed yet and nothing taught: call `sync_model` first.
    #[error("no projection installed yet and no class taught: sync the model first")]
    NoProjection,
    /// The installed projection has no recognition head (no labelled embeddings
    /// were aggregated yet).
    #[error("projection v{0} has no recognition head")]
    NoRecognizer(u32),
    /// An embedding of the wrong length was given.
    #[error("embedding has {actual} values, expected {expected}")]
    WrongDim {
        /// Values expected.
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// The configuration is unusable (reason given).
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// What [`FruitsClient::status`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Entries waiting for upload, in all queues.
    pub queued: usize,
    /// The embedding model's id (sha256 of the model file, hex).
    pub model_id: String,
    /// The installed projection's version, if any.
    pub projection_version: Option<u32>,
}

/// What one [`FruitsClient::flush`] uploaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Batches the server acknowledged.
    pub batches: usize,
    /// Entries those batches held.
    pub entries: usize,
}

/// The SDK's one object; see the module docs.
#[derive(Debug)]
pub struct FruitsClient {
    embedder: Embedder,
    model_id: ModelId,
    installed: RwLock<Option<Arc<Installed>>>,
    queues: Mutex<Queues>,
    uploader: Uploader,
    sync: ModelSync,
    flushing: Mutex<()>,
    syncing: Mutex<()>,
    /// Classes taught on the device, and where they are kept.
    taught: Mutex<TaughtClasses>,
    taught_path: std::path::PathBuf,
    /// The installed head with the taught classes imprinted (or the taught classes
    /// alone): rebuilt whenever either changes, under the `taught` lock.
    recognizer: RwLock<Option<Arc<Recognizer>>>,
}

/// The installed projection and the recogniser over it.
#[derive(Debug)]
struct Installed {
    projector: Projector,
    recognizer: Option<Recognizer>,
}

impl Installed {
    fn new(projector: Projector) -> Arc<Self> {
        let recognizer = Recognizer::from_artifact(&projector.0);
        Arc::new(Self { projector, recognizer })
    }
}

/// The plan cache's folder in the device's storage.
const PLAN_CACHE_DIR: &str = "plans";

/// The taught classes' file in the device's storage.
const TAUGHT_FILE: &str = "taught.bin";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves queues consistent on disk (every change
    // is one atomic append or rename), so a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Loads the model named by `source` and optimises it once; with a
/// `plan_cache_dir`, through the plan cache there (see [`EmbedderOptions`]).
pub fn load_embedder(source: &ModelSource, plan_cache_dir: Option<&Path>) -> Result<Embedder, EmbedError> {
    let options = EmbedderOptions { plan_cache_dir: plan_cache_dir.map(Path::to_path_buf), ..Default::default() };
    match source {
        ModelSource::ManifestPath(path) => Embedder::from_manifest_path(path, options),
        ModelSource::Bytes { model, manifest_json } => {
            Embedder::from_bytes(model, ModelManifest::from_json(manifest_json)?, options)
        }
    }
}

impl FruitsClient {
    /// Loads the model (through the plan cache in the device's storage, so
    /// every launch after the first skips most of the model's optimisation),
    /// opens the device's queues and its installed projection.
    pub fn open(device: DeviceConfig, model: &ModelSource) -> Result<Self, ClientError> {
        let embedder = load_embedder(model, Some(&device.storage_dir.join(PLAN_CACHE_DIR)))?;
        Self::with_embedder(device, embedder)
    }

    /// Like [`FruitsClient::open`] with a model already loaded (several simulated
    /// devices share one in the emulator).
    pub fn with_embedder(device: DeviceConfig, embedder: Embedder) -> Result<Self, ClientError> {
        if device.batch_rows == 0 || device.max_queued == 0 {
            return Err(ClientError::Config("batch_rows and max_queued must be positive".into()));
        }
        let model_id: ModelId = embedder.model_id().parse().map_err(|e| ClientError::Config(format!("{e}")))?;
        let settings = QueueSettings {
            device_id: device.device_id.clone(),
            model_id,
            embedding_dim: embedder.dim() as u32,
            batch_rows: device.batch_rows,
            max_entries: device.max_queued,
        };
        let queues = Queues::open(&device.storage_dir.join("queue"), settings)?;
        let taught_path = device.storage_dir.join(TAUGHT_FILE);
        let uploader = Uploader::new(UploaderConfig {
            server_url: device.ingest_url.clone(),
            device_id: device.device_id.clone(),
            secret: device.device_secret.clone(),
            backoff: device.backoff,
        })?;
        let sync = ModelSync::new(SyncConfig {
            server_url: device.ingest_url,
            public_key: device.projection_public_key,
            model_id,
            dir: device.storage_dir,
        })?;
        let installed = sync.current()?.map(Installed::new);
        let taught = TaughtClasses::load(&taught_path, embedder.dim())?;
        let client = Self {
            embedder,
            model_id,
            installed: RwLock::new(installed),
            queues: Mutex::new(queues),
            uploader,
            sync,
            flushing: Mutex::new(()),
            syncing: Mutex::new(()),
            taught: Mutex::new(taught),
            taught_path,
            recognizer: RwLock::new(None),
        };
        client.rebuild_recognizer(&lock(&client.taught));
        Ok(client)
    }

    /// Rebuilds the recogniser from the installed head and `taught` (the caller holds
    /// the `taught` lock, so that rebuilds happen one at a time, each on current state).
    fn rebuild_recognizer(&self, taught: &TaughtClasses) {
        let combined = match self.installed().and_then(|i| i.recognizer.clone()) {
            Some(published) => published.with_taught(taught),
            None => Recognizer::taught_only(taught, self.embedder.dim()),
        };
        *self.recognizer.write().unwrap_or_else(PoisonError::into_inner) = combined.map(Arc::new);
    }

    /// Teaches the device a class from one photo of it (a fruit missing from the
    /// published head, or one it gets wrong): its embedding is kept in the device's
    /// storage, never uploaded; from 3-5 photos on, `recognize` names the class.
    /// Returns how many examples the class now has.
    pub fn teach(&self, label: &str, photo: &[u8]) -> Result<usize, ClientError> {
        self.teach_embedding(label, &self.embed(photo)?)
    }

    /// [`Self::teach`] with an embedding already computed with [`Self::embed`].
    pub fn teach_embedding(&self, label: &str, embedding: &[f32]) -> Result<usize, ClientError> {
        let mut taught = lock(&self.taught);
        let mut next = taught.clone();
        let examples = next.teach(label, embedding)?;
        next.save(&self.taught_path)?;
        *taught = next;
        self.rebuild_recognizer(&taught);
        Ok(examples)
    }

    /// Forgets a taught class and its examples; `false` when it was not taught.
    pub fn forget(&self, label: &str) -> Result<bool, ClientError> {
        let mut taught = lock(&self.taught);
        let mut next = taught.clone();
        if !next.forget(label) {
            return Ok(false);
        }
        next.save(&self.taught_path)?;
        *taught = next;
        self.rebuild_recognizer(&taught);
        Ok(true)
    }

    /// The taught classes and how many examples each has, by label.
    pub fn taught(&self) -> Vec<(String, usize)> {
        lock(&self.taught).classes().iter().map(|c| (c.label.clone(), c.examples.len())).collect()
    }

    /// Installs a published projection obtained without the network (bundled with an
    /// app, or copied from a publisher's storage): `latest.json` and the artifact it
    /// names, with every check of [`Self::sync_model`].
    pub fn install_projection(&self, artifact: &[u8], manifest_json: &[u8]) -> Result<SyncOutcome, ClientError> {
        let _one_sync = lock(&self.syncing);
        let outcome = self.sync.install_published(artifact, manifest_json)?;
        self.reload_installed(&outcome)?;
        Ok(outcome)
    }

    fn reload_installed(&self, outcome: &SyncOutcome) -> Result<(), ClientError> {
        if let SyncOutcome::Updated { .. } = outcome {
            let installed = self.sync.current()?.map(Installed::new);
            *self.installed.write().unwrap_or_else(PoisonError::into_inner) = installed;
            self.rebuild_recognizer(&lock(&self.taught));
        }
        Ok(())
    }

    /// The embedding of one encoded photo (JPEG, PNG, WebP, GIF, BMP).
    pub fn embed(&self, photo: &[u8]) -> Result<Vec<f32>, ClientError> {
        Ok(self.embedder.embed(photo)?)
    }

    /// Recognises the fruit on one encoded photo, offline.
    pub fn recognize(&self, photo: &[u8]) -> Result<Recognition, ClientError> {
        self.recognize_embedding(&self.embed(photo)?)
    }

    /// Recognises the fruit of an embedding already computed with [`Self::embed`]
    /// (so that one photo is embedded once to be both recognised and queued).
    pub fn recognize_embedding(&self, embedding: &[f32]) -> Result<Recognition, ClientError> {
        let recognizer = self.recognizer.read().unwrap_or_else(PoisonError::into_inner).clone();
        match (recognizer, self.installed()) {
            (Some(recognizer), _) => Ok(recognizer.recognize(embedding)?),
            (None, Some(installed)) => Err(ClientError::NoRecognizer(installed.projector.version())),
            (None, None) => Err(ClientError::NoProjection),
        }
    }

    /// The installed projection, if any.
    fn installed(&self) -> Option<Arc<Installed>> {
        self.installed.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The `k` codes of an embedding under the installed projection, and its version.
    pub fn project(&self, embedding: &[f32]) -> Result<(Vec<f32>, u32), ClientError> {
        let installed = self.installed().ok_or(ClientError::NoProjection)?;
        let projector = &installed.projector;
        self.check_dim(embedding)?;
        let codes = projector
            .project(embedding)
            .ok_or(ClientError::WrongDim { expected: projector.0.dim as usize, actual: embedding.len() })?;
        Ok((codes, projector.version()))
    }

    fn check_dim(&self, embedding: &[f32]) -> Result<(), ClientError> {
        match embedding.len() == self.embedder.dim() {
            true => Ok(()),
            false => Err(ClientError::WrongDim { expected: self.embedder.dim(), actual: embedding.len() }),
        }
    }

    /// Queues one embedding for upload, durably, with an optional label (what the
    /// photo shows): as is before any projection is installed, as codes after.
    pub fn enqueue(&self, embedding: &[f32], label: Option<&str>) -> Result<QueueKey, ClientError> {
        self.check_dim(embedding)?;
        let (key, values) = match self.installed() {
            None => (QueueKey::Embeddings, embedding.to_vec()),
            Some(installed) => {
                let p = &installed.projector;
                let codes = p
                    .project(embedding)
                    .ok_or(ClientError::WrongDim { expected: p.0.dim as usize, actual: embedding.len() })?;
                (QueueKey::Codes { version: p.version(), k: p.0.k }, codes)
            }
        };
        lock(&self.queues).push(key, &values, label, now_ms())?;
        Ok(key)
    }

    /// Uploads every queued batch (embeddings first, then codes by projection
    /// version), each removed once the server acknowledged it. The queue lock is
    /// released during each upload, so `enqueue` and `status` carry on meanwhile.
    pub fn flush(&self) -> Result<FlushReport, ClientError> {
        let _one_flush = lock(&self.flushing);
        let mut report = FlushReport::default();
        let keys = lock(&self.queues).keys();
        for key in keys {
            loop {
                // The queue lock is a temporary of this statement: released before the upload.
                let Some(batch) = lock(&self.queues).next_batch(key)? else { break };
                self.uploader.upload(&batch)?;
                lock(&self.queues).ack(key, &batch)?;
                report.batches += 1;
                report.entries += batch.rows;
            }
        }
        let current = self.installed().map(|i| QueueKey::Codes { version: i.projector.version(), k: i.projector.0.k });
        lock(&self.queues).remove_drained(current)?;
        Ok(report)
    }

    /// Fetches the latest published projection; when it is new, verifies and
    /// installs it, and from then on `enqueue` queues codes made with it.
    pub fn sync_model(&self) -> Result<SyncOutcome, ClientError> {
        let _one_sync = lock(&self.syncing);
        let outcome = self.sync.sync_model()?;
        self.reload_installed(&outcome)?;
        Ok(outcome)
    }

    /// Queue length, model id and projection version.
    pub fn status(&self) -> Status {
        Status {
            queued: lock(&self.queues).len(),
            model_id: self.model_id.to_string(),
            projection_version: self.installed().map(|i| i.projector.version()),
        }
    }
}
