//! The records and enums that cross the FFI, converted from the core's types.

use fruits_core::client::{self, DeviceConfig};
use fruits_core::sync::SyncOutcome;
use std::path::PathBuf;

use crate::FruitsError;

/// Where the embedding model comes from.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum ModelSource {
    /// A manifest file on the device; it names the model file, relative to itself.
    ManifestPath {
        /// Path of the manifest (JSON).
        path: String,
    },
    /// The model and its manifest in memory, e.g. read from the app's assets.
    Bytes {
        /// The ONNX model file (checked against the manifest's sha256).
        model: Vec<u8>,
        /// The manifest (JSON).
        manifest_json: String,
    },
}

/// How to set up a [`FruitsClient`](crate::FruitsClient).
#[derive(Debug, Clone, uniffi::Record)]
pub struct FruitsConfig {
    /// The app's private storage directory (queues, installed projections).
    pub storage_dir: String,
    /// The embedding model.
    pub model: ModelSource,
    /// The ingest service root, e.g. `https://ingest.example.com`.
    pub ingest_url: String,
    /// The device id registered with ingest.
    pub device_id: String,
    /// The device's HMAC secret.
    pub device_secret: Vec<u8>,
    /// The projection publisher's Ed25519 public key, 32 bytes.
    pub projection_public_key: Vec<u8>,
    /// Attempts per batch in one `flush` (with exponential backoff from 0.5 s
    /// between them) before it gives up with `Network`; at least 1.
    #[uniffi(default = 6)]
    pub upload_attempts: u32,
}

impl From<ModelSource> for client::ModelSource {
    fn from(m: ModelSource) -> Self {
        match m {
            ModelSource::ManifestPath { path } => Self::ManifestPath(PathBuf::from(path)),
            ModelSource::Bytes { model, manifest_json } => Self::Bytes { model, manifest_json },
        }
    }
}

impl TryFrom<FruitsConfig> for (DeviceConfig, client::ModelSource) {
    type Error = FruitsError;

    fn try_from(c: FruitsConfig) -> Result<Self, FruitsError> {
        let key: [u8; 32] = c.projection_public_key.as_slice().try_into().map_err(|_| FruitsError::InvalidInput {
            detail: format!("projection_public_key must be 32 bytes, got {}", c.projection_public_key.len()),
        })?;
        if c.upload_attempts == 0 {
            return Err(FruitsError::InvalidInput { detail: "upload_attempts must be at least 1".into() });
        }
        let mut device = DeviceConfig::new(c.storage_dir, c.ingest_url, c.device_id, c.device_secret, key);
        device.backoff.attempts = c.upload_attempts;
        Ok((device, c.model.into()))
    }
}

/// Where the device stands.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Status {
    /// Entries waiting for upload.
    pub queued: u32,
    /// The embedding model's id (sha256 of the model file, hex).
    pub model_id: String,
    /// The installed projection's version, if any.
    pub projection_version: Option<u32>,
}

impl From<client::Status> for Status {
    fn from(s: client::Status) -> Self {
        Self { queued: count(s.queued), model_id: s.model_id, projection_version: s.projection_version }
    }
}

/// What a flush uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct FlushReport {
    /// Batches the server acknowledged.
    pub batches: u32,
    /// Entries they held.
    pub entries: u32,
}

impl From<client::FlushReport> for FlushReport {
    fn from(r: client::FlushReport) -> Self {
        Self { batches: count(r.batches), entries: count(r.entries) }
    }
}

/// What a projection sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Whether a new version was installed.
    pub updated: bool,
    /// The installed version after the sync, if any.
    pub version: Option<u32>,
}

impl From<SyncOutcome> for SyncReport {
    fn from(o: SyncOutcome) -> Self {
        match o {
            SyncOutcome::Unchanged { version } => Self { updated: false, version },
            SyncOutcome::Updated { version, .. } => Self { updated: true, version: Some(version) },
        }
    }
}

/// A count as the foreign languages' `u32`, saturating (no queue holds 2^32 entries).
pub(crate) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
