//! The embedder: one optimised tract plan, shared by every call and thread.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use crate::error::{EmbedError, Result};
use crate::manifest::{Layout, ModelManifest};
use crate::plan_cache::{PendingStore, PlanCache};
use crate::preprocess::{InputTensor, PreprocessOptions, Preprocessor};

/// How to build an [`Embedder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedderOptions {
    /// Decoding and resizing options.
    pub preprocess: PreprocessOptions,
    /// Run tract's full optimiser (`into_optimized`); `false` only declutters,
    /// which is slower to run but useful when debugging graph surgery.
    pub optimize: bool,
    /// A directory for the plan cache (see `plan_cache.rs`): the first load
    /// stores the decluttered graph there (in the background) and later loads
    /// skip the ONNX model and its declutter, a shorter cold start (BENCHMARKS.md,
    /// "Embedding on the device"). `None`: always build from the ONNX model.
    pub plan_cache_dir: Option<PathBuf>,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        Self { preprocess: PreprocessOptions::default(), optimize: true, plan_cache_dir: None }
    }
}

/// Where an [`Embedder`]'s graph came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanOrigin {
    /// Read, checked and decluttered from the ONNX model.
    Onnx,
    /// Read from the plan cache, written by an earlier load of the same model.
    Cache,
}

type Plan = Arc<TypedRunnableModel>;

/// Photo bytes in, embedding out. Cheap to share: `Send + Sync`, and every
/// method takes `&self`, so wrap it in an `Arc` and call it from any thread.
#[derive(Debug, Clone)]
pub struct Embedder {
    manifest: ModelManifest,
    preprocessor: Preprocessor,
    plan: Plan,
    origin: PlanOrigin,
    cache_store: PendingStore,
}

impl Embedder {
    /// Loads the manifest at `manifest_path` and the model file it names
    /// (relative to the manifest's directory).
    pub fn from_manifest_path(manifest_path: &Path, options: EmbedderOptions) -> Result<Self> {
        let manifest = ModelManifest::load(manifest_path)?;
        let model_path = manifest.model_path(manifest_path);
        Self::from_files(&model_path, manifest, options)
    }

    /// Loads the model at `model_path` and checks it against `manifest`. On a
    /// plan-cache hit the model file is not read at all.
    pub fn from_files(model_path: &Path, manifest: ModelManifest, options: EmbedderOptions) -> Result<Self> {
        Self::load(manifest, options, || {
            std::fs::read(model_path).map(Cow::Owned).map_err(|e| EmbedError::io(model_path, e))
        })
    }

    /// Builds an embedder from model bytes: verifies the sha256 and the declared
    /// shapes against the manifest, then optimises the graph once. On a
    /// plan-cache hit the bytes are not used (the cache was written from bytes
    /// that passed these checks, and is keyed by the manifest and its sha256).
    pub fn from_bytes(model_bytes: &[u8], manifest: ModelManifest, options: EmbedderOptions) -> Result<Self> {
        Self::load(manifest, options, || Ok(Cow::Borrowed(model_bytes)))
    }

    /// The plan from the cache when it holds one for this manifest, else from
    /// the (verified) model bytes, storing it in the cache for the next load.
    fn load<'a>(
        manifest: ModelManifest,
        options: EmbedderOptions,
        model_bytes: impl FnOnce() -> Result<Cow<'a, [u8]>>,
    ) -> Result<Self> {
        manifest.validate()?;
        let cache = options.plan_cache_dir.as_deref().map(|dir| PlanCache::new(dir, &manifest, PLAN_BATCH));
        let cached = cache.as_ref().and_then(PlanCache::load);
        let (graph, origin) = match cached {
            Some(graph) => (graph, PlanOrigin::Cache),
            None => {
                let bytes = model_bytes()?;
                manifest.verify_model_bytes(&bytes)?;
                let graph = decluttered_graph(&bytes, &manifest, Some(PLAN_BATCH))?;
                (graph, PlanOrigin::Onnx)
            }
        };
        let cache_store = match cache {
            Some(cache) if origin == PlanOrigin::Onnx => PendingStore::spawn(cache, graph.clone()),
            _ => PendingStore::default(),
        };
        let plan = runnable(graph, options.optimize)?;
        let preprocessor = Preprocessor::new(manifest.input.clone(), options.preprocess);
        Ok(Self { manifest, preprocessor, plan, origin, cache_store })
    }

    /// Where this embedder's graph came from (the ONNX model or the plan cache).
    pub fn plan_origin(&self) -> PlanOrigin {
        self.origin
    }

    /// Waits until the plan cache write this load started in the background
    /// (a first load with [`EmbedderOptions::plan_cache_dir`]) has finished;
    /// `true` when it wrote the cache. A short-lived process calls it before
    /// exiting so the next run starts from the cache; an app need not.
    pub fn wait_for_plan_cache(&self) -> bool {
        self.cache_store.wait()
    }

    /// The optimised tract plan (benchmarks and profiling only).
    #[doc(hidden)]
    pub fn plan(&self) -> &Arc<TypedRunnableModel> {
        &self.plan
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// The model id (sha256 of the model file).
    pub fn model_id(&self) -> &str {
        self.manifest.model_id()
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.manifest.output.dim as usize
    }

    /// The preprocessor matching the model's input contract.
    pub fn preprocessor(&self) -> &Preprocessor {
        &self.preprocessor
    }

    /// Decodes, preprocesses and embeds one encoded photo.
    pub fn embed(&self, image_bytes: &[u8]) -> Result<Vec<f32>> {
        let tensor = self.preprocessor.preprocess(image_bytes)?;
        self.embed_tensor(&tensor)
    }

    /// Embeds one already-preprocessed tensor.
    pub fn embed_tensor(&self, tensor: &InputTensor) -> Result<Vec<f32>> {
        self.run_one(tensor)
    }

    /// Embeds several preprocessed tensors, one model run each.
    ///
    /// The plan has a fixed batch of one: measured with tract 0.23 on this model
    /// (`bench/embed/run.sh`), a plan with a symbolic batch axis ran 5.7x slower per
    /// image than the batch-1 plan, and batching buys nothing on a phone's CPU.
    pub fn embed_tensors(&self, tensors: &[InputTensor]) -> Result<Vec<Vec<f32>>> {
        tensors.iter().map(|t| self.run_one(t)).collect()
    }

    fn run_one(&self, tensor: &InputTensor) -> Result<Vec<f32>> {
        let shape = self.manifest.input.image_shape();
        if tensor.shape != shape || tensor.data.len() != self.manifest.input.image_len() {
            return Err(EmbedError::TensorShape { expected: shape.to_vec(), actual: tensor.shape.to_vec() });
        }
        let input = tract_ndarray::Array4::from_shape_vec((1, shape[0], shape[1], shape[2]), tensor.data.clone())
            .map_err(|e| EmbedError::Inference(e.to_string()))?;
        let outputs = self.plan.run(tvec!(Tensor::from(input).into())).map_err(inference)?;
        let view = outputs
            .first()
            .ok_or_else(|| EmbedError::Inference("model produced no output".into()))?
            .to_plain_array_view::<f32>()
            .map_err(inference)?;
        if view.shape() != [1, self.dim()] {
            return Err(EmbedError::Inference(format!(
                "output shape {:?}, expected [1, {}]",
                view.shape(),
                self.dim()
            )));
        }
        Ok(view.iter().copied().collect())
    }

    /// Embeds several encoded photos, each with its own result: a photo that fails
    /// to decode or embed does not affect the others.
    pub fn embed_batch(&self, images: &[&[u8]]) -> Vec<Result<Vec<f32>>> {
        images.iter().map(|bytes| self.embed(bytes)).collect()
    }
}

fn inference(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Inference(format!("{e:#}"))
}

fn mismatch(msg: String) -> EmbedError {
    EmbedError::ModelShapeMismatch(msg)
}

/// How [`build_plan`] shapes and optimises the graph. Public only for the
/// benchmarks in `mobile-core/benches/` and diagnostics; not a stable API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanConfig {
    /// `None`: the batch axis is the symbol `N`; `Some(b)`: fixed batch `b`.
    pub batch: Option<usize>,
    /// `into_optimized` (true) or `into_decluttered` (false).
    pub optimize: bool,
}

/// The embedder's fixed batch (see [`Embedder::embed_tensors`]).
const PLAN_BATCH: usize = 1;

/// Loads, checks and optimises the model graph.
/// Public only for benchmarks and diagnostics; not a stable API.
#[doc(hidden)]
pub fn build_plan(model_bytes: &[u8], manifest: &ModelManifest, config: PlanConfig) -> Result<Arc<TypedRunnableModel>> {
    runnable(decluttered_graph(model_bytes, manifest, config.batch)?, config.optimize)
}

/// Codegen (when `optimize`: Fruits' own kernels first, then tract's) and the
/// runnable plan.
fn runnable(mut graph: TypedModel, optimize: bool) -> Result<Plan> {
    if optimize {
        crate::kernels::rewrite_convolutions(&mut graph).map_err(inference)?;
        graph.optimize().map_err(inference)?;
    }
    graph.into_runnable().map_err(inference)
}

/// Loads the ONNX model, checks it against the manifest and declutters it
/// (graph surgery goes here). `batch`: `None` for a symbolic batch axis `N`.
fn decluttered_graph(model_bytes: &[u8], manifest: &ModelManifest, batch: Option<usize>) -> Result<TypedModel> {
    let spec = &manifest.input;
    let mut model = tract_onnx::onnx().model_for_read(&mut std::io::Cursor::new(model_bytes)).map_err(inference)?;

    // Input: exactly one, with the manifest's name and compatible declared dims.
    let inputs = model.input_outlets().map_err(inference)?.to_vec();
    let names: Vec<String> = inputs.iter().map(|o| model.node(o.node).name.clone()).collect();
    if names != [spec.name.as_str()] {
        return Err(mismatch(format!("inputs {names:?}, manifest expects [{:?}]", spec.name)));
    }
    let (h, w, c) = (i64::from(spec.height), i64::from(spec.width), i64::from(spec.channels));
    let expected: [Option<i64>; 4] = match spec.layout {
        Layout::Nhwc => [None, Some(h), Some(w), Some(c)],
        Layout::Nchw => [None, Some(c), Some(h), Some(w)],
    };
    let fact = model.input_fact(0).map_err(inference)?;
    if let Some(rank) = fact.shape.rank().concretize()
        && rank != 4
    {
        return Err(mismatch(format!("input rank {rank}, manifest expects 4")));
    }
    for (axis, want) in expected.iter().enumerate() {
        let declared = fact.shape.dim(axis).and_then(|d| d.concretize()).and_then(|d| d.to_i64().ok());
        if let (Some(want), Some(got)) = (want, declared)
            && *want != got
        {
            return Err(mismatch(format!("input axis {axis} is {got}, manifest expects {want} ({:?})", spec.layout)));
        }
    }

    // Output: select the manifest's output by name.
    let outputs = model.output_outlets().map_err(inference)?.to_vec();
    let out_names: Vec<String> = outputs
        .iter()
        .map(|o| model.outlet_label(*o).map(str::to_owned).unwrap_or_else(|| model.node(o.node).name.clone()))
        .collect();
    let Some(out_ix) = out_names.iter().position(|n| *n == manifest.output.name) else {
        return Err(mismatch(format!("outputs {out_names:?}, manifest expects {:?}", manifest.output.name)));
    };
    model.select_output_outlets(&[outputs[out_ix]]).map_err(inference)?;

    let n: TDim = match batch {
        None => model.sym("N").into(),
        Some(b) => (b as i64).into(),
    };
    let shape: TVec<TDim> = match spec.layout {
        Layout::Nhwc => tvec![n, h.into(), w.into(), c.into()],
        Layout::Nchw => tvec![n, c.into(), h.into(), w.into()],
    };
    let model = model
        .with_input_fact(0, f32::fact(ShapeFact::from_dims(shape)).into())
        .map_err(|e| mismatch(format!("input contract rejected by the graph: {e:#}")))?;
    let typed = model.into_typed().map_err(|e| mismatch(format!("graph does not accept the input contract: {e:#}")))?;

    let out = typed.output_fact(0).map_err(inference)?;
    let dims: Vec<TDim> = out.shape.iter().cloned().collect();
    let dim_ok = dims.len() == 2 && dims[1].to_i64().ok() == Some(i64::from(manifest.output.dim));
    if !dim_ok {
        return Err(mismatch(format!("output shape {dims:?}, manifest expects [N, {}]", manifest.output.dim)));
    }
    let mut graph = typed.into_decluttered().map_err(inference)?;
    // A QDQ (int8) model's quantise/dequantise pairs become one f32 pass each, bit-equal;
    // the pads they moved fold into their convolutions on a second declutter.
    if crate::kernels::fuse_fake_quant(&mut graph).map_err(inference)? > 0 {
        graph = graph.into_decluttered().map_err(inference)?;
    }
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedder_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Embedder>();
    }
}
