//! `fruits embed`: images -> embeddings, one record per image.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use fruits_core::{EmbedError, Embedder, EmbedderOptions, InputTensor, ModelManifest, PreprocessOptions};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::args::EmbedArgs;
use crate::model_dir;
use crate::output::{self, EmbeddingRecord, EmbeddingSink};

/// Runs `fruits embed`.
pub fn run(args: &EmbedArgs) -> Result<ExitCode> {
    let embedder = load_embedder(args)?;
    let (files, walked_dir) = collect_inputs(&args.inputs)?;
    tracing::info!(files = files.len(), model = embedder.model_id(), "embedding");

    let progress = progress_bar(files.len() as u64, walked_dir);
    let mut sink = output::open(args, embedder.model_id())?;
    let mut failures = 0usize;
    for chunk in files.chunks(args.batch as usize) {
        failures += embed_chunk(&embedder, chunk, sink.as_mut(), &progress)?;
        progress.inc(chunk.len() as u64);
    }
    sink.finish()?;
    progress.finish_and_clear();
    embedder.wait_for_plan_cache();

    if failures > 0 {
        eprintln!("{failures} of {} images failed", files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn load_embedder(args: &EmbedArgs) -> Result<Embedder> {
    let loc = model_dir::resolve(args.model.as_deref(), args.manifest.as_deref())?;
    let manifest = ModelManifest::load(&loc.manifest)?;
    let model_path = loc.model.unwrap_or_else(|| manifest.model_path(&loc.manifest));
    let options = EmbedderOptions {
        preprocess: PreprocessOptions { jpeg_dct_scaling: !args.no_jpeg_dct_scaling, ..Default::default() },
        plan_cache_dir: args.plan_cache.clone(),
        ..Default::default()
    };
    tracing::debug!(manifest = %loc.manifest.display(), model = %model_path.display(), "loading model");
    let embedder = Embedder::from_files(&model_path, manifest, options)
        .with_context(|| format!("cannot load model {}", model_path.display()))?;
    tracing::debug!(origin = ?embedder.plan_origin(), "model loaded");
    if args.verbose {
        eprintln!(
            "model {} ({}), plan {:?}; JPEG decoding: libjpeg-turbo {}",
            model_path.display(),
            embedder.model_id(),
            embedder.plan_origin(),
            match fruits_core::preprocess::JPEG_SIMD {
                true => "with SIMD",
                false => "WITHOUT SIMD (built without nasm: large JPEGs decode about 3x slower)",
            }
        );
    }
    Ok(embedder)
}

/// Expands the command-line inputs: files as given, directories walked
/// recursively (sorted, image extensions only). Also says whether any
/// directory was walked (the progress bar is shown only then).
pub(crate) fn collect_inputs(inputs: &[PathBuf]) -> Result<(Vec<PathBuf>, bool)> {
    let mut files = Vec::new();
    let mut walked = false;
    for input in inputs {
        if input.is_dir() {
            walked = true;
            walk(input, &mut files).with_context(|| format!("cannot walk {}", input.display()))?;
        } else {
            files.push(input.clone());
        }
    }
    Ok((files, walked))
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else if fruits_core::has_image_extension(&path) {
            files.push(path);
        }
    }
    Ok(())
}

fn progress_bar(len: u64, walked_dir: bool) -> ProgressBar {
    let target = if walked_dir && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} images {elapsed} (eta {eta})") {
        bar.set_style(style);
    }
    bar
}

/// Reads and preprocesses one chunk in parallel, embeds it in one batched run,
/// writes the successes in input order and reports the failures. Returns the
/// number of failed images.
fn embed_chunk(
    embedder: &Embedder,
    chunk: &[PathBuf],
    sink: &mut dyn EmbeddingSink,
    progress: &ProgressBar,
) -> Result<usize> {
    let prepared: Vec<Result<InputTensor, EmbedError>> = chunk
        .par_iter()
        .map(|path| {
            let bytes = std::fs::read(path).map_err(|e| EmbedError::io(path, e))?;
            embedder.preprocessor().preprocess(&bytes)
        })
        .collect();
    let tensors: Vec<InputTensor> = prepared.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let mut embeddings = embedder.embed_tensors(&tensors).context("batched inference failed")?.into_iter();

    let mut failures = 0;
    for (path, result) in chunk.iter().zip(prepared) {
        let shown = path.to_string_lossy();
        match result {
            Ok(_) => {
                let embedding = embeddings.next().context("model returned fewer rows than inputs")?;
                sink.write(&EmbeddingRecord { path: &shown, dim: embedding.len(), embedding: &embedding })?;
            }
            Err(e) => {
                failures += 1;
                tracing::debug!(path = %shown, kind = e.kind(), "failed");
                progress.suspend(|| eprintln!("error: {shown}: {e} [{}]", e.kind()));
            }
        }
    }
    Ok(failures)
}
