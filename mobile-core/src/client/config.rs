//! How a [`FruitsClient`](super::FruitsClient) is set up.

use crate::uploader::Backoff;
use std::path::PathBuf;

/// Where the embedding model comes from.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// A manifest on disk; it names the model file, relative to itself.
    ManifestPath(PathBuf),
    /// Model bytes and manifest JSON held in memory (for example read from app assets).
    Bytes {
        /// The ONNX model file's bytes (checked against the manifest's sha256).
        model: Vec<u8>,
        /// The manifest, JSON.
        manifest_json: String,
    },
}

/// Everything about one device but its model.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// The app's private storage directory: queues, installed projections and
    /// the model's plan cache (`plans/`, about 9 MB) live here.
    pub storage_dir: PathBuf,
    /// The ingest service root, e.g. `https://ingest.example.com` (uploads and sync).
    pub ingest_url: String,
    /// The device id registered with ingest.
    pub device_id: String,
    /// The device's HMAC secret.
    pub device_secret: Vec<u8>,
    /// The projection publisher's Ed25519 public key.
    pub projection_public_key: [u8; 32],
    /// Most rows per uploaded shard.
    pub batch_rows: usize,
    /// Most entries each queue holds before `enqueue` refuses new ones.
    pub max_queued: usize,
    /// Retry schedule of uploads.
    pub backoff: Backoff,
}

impl DeviceConfig {
    /// A configuration with the default batching (64 rows per shard), queue bound
    /// (10,000 entries) and retry schedule.
    pub fn new(
        storage_dir: impl Into<PathBuf>,
        ingest_url: impl Into<String>,
        device_id: impl Into<String>,
        device_secret: Vec<u8>,
        projection_public_key: [u8; 32],
    ) -> Self {
        Self {
            storage_dir: storage_dir.into(),
            ingest_url: ingest_url.into(),
            device_id: device_id.into(),
            device_secret,
            projection_public_key,
            batch_rows: 64,
            max_queued: 10_000,
            backoff: Backoff::default(),
        }
    }
}
