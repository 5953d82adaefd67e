//! The plan cache: tract's decluttered graph, kept on disk between launches.
//!
//! Most of a cold start goes before any kernel is chosen: reading the ONNX
//! protobuf, type inference and tract's declutter passes
//! (docs/benchmarks-history.md, issue 2, the cold-start profile of 2026-12-01).
//! Their result depends only on the model, its manifest,
//! this crate's graph surgery (the int8 model's fused quantise/dequantise passes, which
//! the archive names as `fruits_fake_quant`) and the tract version, so the first launch stores
//! it as an NNEF archive and later launches read it back and run only tract's
//! codegen, which picks this machine's kernels.
//!
//! The cache is an optimisation, never an authority: a missing, stale,
//! truncated or corrupt file is a miss (logged), the caller rebuilds from the
//! ONNX model and the file is rewritten. It is written only from a model whose
//! sha256 matched the manifest, on a background thread ([`PendingStore`]):
//! writing costs 60-90 ms (serialising, hashing, fsync), which a first launch
//! does not wait for, and a process killed mid-write leaves only a temporary file.
//!
//! File `<dir>/<model sha256>.plan`:
//!
//! | bytes | content                                                    |
//! |-------|------------------------------------------------------------|
//! | 8     | magic `FRTPLAN1`                                           |
//! | 32    | key: sha256 of tract's version, this crate's version, the manifest and the batch |
//! | 32    | sha256 of the payload                                      |
//! | rest  | payload: tract-nnef tar of the decluttered graph           |

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

use crate::manifest::ModelManifest;
use fruits_durable::replace_file;

const MAGIC: &[u8; 8] = b"FRTPLAN1";
const HEADER_LEN: usize = MAGIC.len() + 32 + 32;

/// The tract release whose NNEF writer and declutter passes made the cached
/// graph: part of the key, and checked against the version tract stamps into
/// every archive (`tract_nnef_ser_version`; a test fails when tract is bumped
/// without this).
const TRACT_VERSION: &str = "0.23.9";
const TRACT_VERSION_PROPERTY: &str = "tract_nnef_ser_version";

/// Where one model's decluttered graph is cached, the key it must carry and
/// the input and output shapes the manifest expects of it.
#[derive(Debug)]
pub(crate) struct PlanCache {
    path: PathBuf,
    key: [u8; 32],
    input_shape: [usize; 4],
    output_shape: [usize; 2],
}

impl PlanCache {
    /// The cache entry in `dir` for `manifest`'s model at a fixed `batch`
    /// (`manifest` validated: its sha256, the file name, is 64 hex digits).
    pub(crate) fn new(dir: &Path, manifest: &ModelManifest, batch: usize) -> Self {
        // Serialising a plain struct of strings and numbers cannot fail.
        let manifest_json = serde_json::to_string(manifest).unwrap_or_default();
        let mut key = Sha256::new();
        for part in [TRACT_VERSION, env!("CARGO_PKG_VERSION"), &manifest_json] {
            key.update((part.len() as u64).to_le_bytes());
            key.update(part);
        }
        key.update((batch as u64).to_le_bytes());
        let [a, b, c] = manifest.input.image_shape();
        Self {
            path: dir.join(format!("{}.plan", manifest.model_id())),
            key: key.finalize().into(),
            input_shape: [batch, a, b, c],
            output_shape: [batch, manifest.output.dim as usize],
        }
    }

    /// The cached decluttered graph, or `None` (with the reason logged) when
    /// there is no usable entry.
    pub(crate) fn load(&self) -> Option<TypedModel> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return miss(&self.path, &format!("unreadable: {e}")),
        };
        let payload = match self.check(&bytes) {
            Ok(payload) => payload,
            Err(reason) => return miss(&self.path, reason),
        };
        let model = match nnef().model_for_read(&mut std::io::Cursor::new(payload)) {
            Ok(model) => model,
            Err(e) => return miss(&self.path, &format!("not a readable graph: {e:#}")),
        };
        let stamped = stamped_tract_version(&model);
        if stamped.as_deref() != Some(TRACT_VERSION) {
            return miss(&self.path, &format!("written by tract {stamped:?}, running {TRACT_VERSION}"));
        }
        if !self.matches_manifest(&model) {
            return miss(&self.path, "input or output does not match the manifest");
        }
        // NNEF writes some operators in forms tract's declutter rewrites again (depthwise
        // convolutions, reshapes around products); only the decluttered graph meets Fruits'
        // kernels as the one built from ONNX does.
        match model.into_decluttered() {
            Ok(model) => Some(model),
            Err(e) => miss(&self.path, &format!("cannot declutter: {e:#}")),
        }
    }

    /// One f32 input and one output, of the manifest's shapes (a second line
    /// of defence behind the key).
    fn matches_manifest(&self, model: &TypedModel) -> bool {
        let input_ok = model
            .input_fact(0)
            .is_ok_and(|f| f.datum_type == f32::datum_type() && f.shape.as_concrete() == Some(&self.input_shape[..]));
        let output_ok = model.output_fact(0).is_ok_and(|f| f.shape.as_concrete() == Some(&self.output_shape[..]));
        model.inputs.len() == 1 && model.outputs.len() == 1 && input_ok && output_ok
    }

    /// Verifies the header and returns the payload.
    fn check<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], &'static str> {
        if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not a plan cache file");
        }
        let (key, rest) = bytes[MAGIC.len()..].split_at(32);
        let (digest, payload) = rest.split_at(32);
        if key != self.key {
            return Err("stale (another tract, crate or manifest)");
        }
        if digest != Sha256::digest(payload).as_slice() {
            return Err("corrupt (payload digest mismatch)");
        }
        Ok(payload)
    }

    /// Stores `model` (decluttered, not yet optimised), replacing any old entry.
    pub(crate) fn store(&self, model: &TypedModel) -> TractResult<()> {
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&self.key);
        header.resize(HEADER_LEN, 0);
        // The archive is appended to the header in one buffer, then its digest
        // filled in. Deterministic (fixed timestamps): one graph, one file.
        let mut file = nnef().write_to_tar_with_config(model, header, false, true)?;
        let digest = Sha256::digest(&file[HEADER_LEN..]);
        file[HEADER_LEN - 32..HEADER_LEN].copy_from_slice(&digest);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        replace_file(&self.path, &file)?;
        Ok(())
    }
}

/// A [`PlanCache::store`] running on its own thread; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct PendingStore(Arc<PendingInner>);

#[derive(Debug, Default)]
struct PendingInner {
    thread: Mutex<Option<JoinHandle<bool>>>,
    stored: OnceLock<bool>,
}

impl PendingStore {
    /// Starts storing `graph` in `cache` in the background.
    pub(crate) fn spawn(cache: PlanCache, graph: TypedModel) -> Self {
        let path = cache.path.clone();
        let thread = std::thread::Builder::new()
            .name("fruits-plan-cache".into())
            .spawn(move || cache.store(&graph).map_err(|e| warn_not_stored(&cache.path, format!("{e:#}"))).is_ok());
        let pending = Self::default();
        match thread {
            Ok(handle) => *pending.0.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle),
            Err(e) => warn_not_stored(&path, format!("cannot start a thread: {e}")),
        }
        pending
    }

    /// Waits for the store to finish; `true` when it wrote the cache.
    pub(crate) fn wait(&self) -> bool {
        *self.0.stored.get_or_init(|| {
            let handle = self.0.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
            handle.is_some_and(|h| h.join().unwrap_or(false))
        })
    }
}

fn warn_not_stored(path: &Path, error: String) {
    tracing::warn!(path = %path.display(), error, "cannot write the plan cache");
}

/// NNEF with the ONNX operators tract keeps and Fruits' own graph surgery.
fn nnef() -> tract_nnef::framework::Nnef {
    tract_nnef::nnef().with_onnx().with_registry(crate::kernels::nnef_registry())
}

/// The tract version an NNEF archive was written by.
fn stamped_tract_version(model: &TypedModel) -> Option<String> {
    model.properties.get(TRACT_VERSION_PROPERTY)?.try_as_plain_ram().ok()?.to_scalar::<String>().ok().cloned()
}

fn miss<T>(path: &Path, reason: &str) -> Option<T> {
    tracing::warn!(path = %path.display(), reason, "plan cache not used; rebuilding from the ONNX model");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model() -> TypedModel {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, 4])).unwrap();
        let y = model.wire_node("y", tract_onnx::tract_core::ops::math::square(), &[x]).unwrap();
        model.select_output_outlets(&y).unwrap();
        model
    }

    #[test]
    fn tract_version_matches_the_running_tract() {
        // The NNEF writer stamps its own crate version into every archive.
        let payload = nnef().write_to_tar(&tiny_model(), Vec::new()).unwrap();
        let model = nnef().model_for_read(&mut std::io::Cursor::new(payload)).unwrap();
        assert_eq!(
            stamped_tract_version(&model).as_deref(),
            Some(TRACT_VERSION),
            "tract was upgraded: update TRACT_VERSION"
        );
    }
}
