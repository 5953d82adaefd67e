//! The exported client object: each method delegates to the core client.

use std::sync::Arc;

use fruits_core::client as core;

use crate::records::count;
use crate::{FlushReport, FruitsConfig, FruitsError, Recognition, Status, SyncReport, TaughtClass};

/// The SDK's one object: embed and recognise photos, queue and upload embeddings,
/// sync the projection. Thread-safe: call it from any background thread; long
/// calls (flush, sync) do not block embedding or queueing.
#[derive(Debug, uniffi::Object)]
pub struct FruitsClient {
    inner: core::FruitsClient,
}

#[uniffi::export]
impl FruitsClient {
    /// Loads the model (a second or so: do it once, off the main thread), opens the
    /// device's queues and its installed projection.
    #[uniffi::constructor]
    pub fn new(config: FruitsConfig) -> Result<Arc<Self>, FruitsError> {
        let (device, model) = config.try_into()?;
        Ok(Arc::new(Self { inner: core::FruitsClient::open(device, &model)? }))
    }

    /// The embedding (1280 values for MobileNetV2) of one encoded photo.
    pub fn embed(&self, photo: Vec<u8>) -> Result<Vec<f32>, FruitsError> {
        Ok(self.inner.embed(&photo)?)
    }

    /// Recognises the fruit on one encoded photo, offline (needs a synced projection,
    /// or classes taught with [`Self::teach`]).
    pub fn recognize(&self, photo: Vec<u8>) -> Result<Recognition, FruitsError> {
        Ok(self.inner.recognize(&photo)?.into())
    }

    /// Recognises the fruit of an embedding from [`Self::embed`], so that one photo
    /// is embedded once to be both recognised and queued.
    pub fn recognize_embedding(&self, embedding: Vec<f32>) -> Result<Recognition, FruitsError> {
        Ok(self.inner.recognize_embedding(&embedding)?.into())
    }

    /// Teaches this device a class from one photo of it (kept on the device, never
    /// uploaded); returns the class's examples. From 3-5 photos on, `recognize` names it.
    pub fn teach(&self, label: String, photo: Vec<u8>) -> Result<u32, FruitsError> {
        Ok(count(self.inner.teach(&label, &photo)?))
    }

    /// Forgets a taught class; `false` when it was not taught.
    pub fn forget(&self, label: String) -> Result<bool, FruitsError> {
        Ok(self.inner.forget(&label)?)
    }

    /// The classes taught on this device.
    pub fn taught_classes(&self) -> Vec<TaughtClass> {
        self.inner.taught().into_iter().map(|(label, n)| TaughtClass { label, examples: count(n) }).collect()
    }

    /// The `k` codes of an embedding under the installed projection.
    pub fn project(&self, embedding: Vec<f32>) -> Result<Vec<f32>, FruitsError> {
        Ok(self.inner.project(&embedding)?.0)
    }

    /// Queues an embedding for upload, durably, with an optional label (what the
    /// photo shows); once a projection is installed, its codes are queued instead.
    pub fn enqueue(&self, embedding: Vec<f32>, label: Option<String>) -> Result<(), FruitsError> {
        self.inner.enqueue(&embedding, label.as_deref())?;
        Ok(())
    }

    /// Uploads everything queued; what stays queued on failure is retried next time.
    pub fn flush(&self) -> Result<FlushReport, FruitsError> {
        Ok(self.inner.flush()?.into())
    }

    /// Fetches, verifies and installs the latest published projection, if newer.
    pub fn sync_model(&self) -> Result<SyncReport, FruitsError> {
        Ok(self.inner.sync_model()?.into())
    }

    /// Queue length, model id and projection version.
    pub fn status(&self) -> Status {
        self.inner.status().into()
    }
}

/// Cosine similarity of two embeddings (for "more like this" and deduplication).
#[uniffi::export]
pub fn cosine_similarity(a: Vec<f32>, b: Vec<f32>) -> Result<f32, FruitsError> {
    fruits_core::cosine_similarity(&a, &b).ok_or_else(|| FruitsError::InvalidInput {
        detail: format!("vectors of lengths {} and {} with non-zero norms expected", a.len(), b.len()),
    })
}
