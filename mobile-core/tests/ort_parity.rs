//! Parity with ONNX Runtime and Pillow (scripts/ort_reference.py).
//!
//! Fails (never skips) when python or the photos are missing: run scripts/setup.sh.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use fruits_core::preprocess::normalise;
use serde_json::Value;

/// Tract vs ONNX Runtime on identical 224x224 pixels: max abs per component.
const EMBEDDING_TOLERANCE: f32 = 1e-4;
/// Rust vs Pillow preprocessing, in normalised units (1 grey level = 2/255 = 0.0078).
/// Measured on the 26 fruit photos: max exactly one grey level, worst mean 0.0014.
const PREPROCESS_MEAN_TOLERANCE: f32 = 0.002; // a quarter of a grey level on average
const PREPROCESS_MAX_TOLERANCE: f32 = 2.0 / 255.0 + 1e-6; // one grey level (rounding)
/// Whole pipeline (Rust decode + preprocess + tract) vs (Pillow + ORT).
const PIPELINE_MIN_COSINE: f32 = 0.999;

struct Golden {
    dir: PathBuf,
    json: Value,
    _tmp: tempfile::TempDir,
}

fn golden() -> &'static Golden {
    static G: OnceLock<Golden> = OnceLock::new();
    G.get_or_init(|| {
        let photos = fruit_photos(); // fails with setup instructions if absent
        let python = std::env::var("FRUITS_PYTHON").unwrap_or_else(|_| "python3".into());
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("golden");
        let script = repo_root().join("scripts/ort_reference.py");
        let out = Command::new(&python)
            .arg(&script)
            .arg(&dir)
            .arg("--photos")
            .arg(photos[0].parent().unwrap())
            .arg("--manifest")
            .arg(manifest_path())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {python} ({e}); install python3 or set FRUITS_PYTHON, then run scripts/setup.sh")
            });
        assert!(
            out.status.success(),
            "{} failed: {}\nRun scripts/setup.sh (installs onnxruntime, numpy, Pillow from scripts/requirements.txt)",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_slice(&std::fs::read(dir.join("golden.json")).unwrap()).unwrap();
        assert_eq!(json["model_sha256"], manifest().sha256);
        Golden { dir, json, _tmp: tmp }
    })
}

fn entries() -> &'static Vec<Value> {
    let e = golden().json["entries"].as_array().unwrap();
    assert!(e.len() >= 10, "only {} golden entries", e.len());
    e
}

#[test]
fn tract_matches_onnx_runtime_on_pillow_pixels() {
    let embedder = embedder();
    let spec = &embedder.manifest().input;
    let mut worst = 0f32;
    for e in entries() {
        let png = std::fs::read(golden().dir.join(e["png"].as_str().unwrap())).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let tensor = normalise(&img, spec).unwrap();
        let ours = embedder.embed_tensor(&tensor).unwrap();
        let theirs: Vec<f32> = e["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(ours.len(), 1280);
        let (max, _) = diff(&ours, &theirs);
        worst = worst.max(max);
        assert!(max <= EMBEDDING_TOLERANCE, "{}: max abs diff {max:e} > {EMBEDDING_TOLERANCE:e}", e["png"]);
    }
    eprintln!("tract vs ORT: {} photos, worst max abs diff {worst:e}", entries().len());
}

#[test]
fn rust_preprocessing_matches_pillow() {
    let embedder = embedder();
    let spec = &embedder.manifest().input;
    let (mut worst_max, mut worst_mean, mut worst_cos) = (0f32, 0f32, 1f32);
    for e in entries() {
        let source = std::fs::read(e["source"].as_str().unwrap()).unwrap();
        let ours = embedder.preprocessor().preprocess(&source).unwrap();
        let theirs: Vec<f32> = e["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let cos = fruits_core::cosine_similarity(&embedder.embed_tensor(&ours).unwrap(), &theirs).unwrap();
        worst_cos = worst_cos.min(cos);
        assert!(cos >= PIPELINE_MIN_COSINE, "{}: pipeline cosine {cos}", e["png"]);
        let png = std::fs::read(golden().dir.join(e["png"].as_str().unwrap())).unwrap();
        let pillow = normalise(&image::load_from_memory(&png).unwrap().to_rgb8(), spec).unwrap();
        let (max, mean) = diff(&ours.data, &pillow.data);
        eprintln!("{:<28} max {max:.4} mean {mean:.5}", e["png"].as_str().unwrap());
        worst_max = worst_max.max(max);
        worst_mean = worst_mean.max(mean);
        assert!(mean <= PREPROCESS_MEAN_TOLERANCE, "{}: mean abs diff {mean}", e["png"]);
        assert!(max <= PREPROCESS_MAX_TOLERANCE, "{}: max abs diff {max}", e["png"]);
    }
    eprintln!(
        "preprocessing vs Pillow: worst max {worst_max:.4}, worst mean {worst_mean:.5}; pipeline cosine vs ORT >= {worst_cos:.6}"
    );
}
