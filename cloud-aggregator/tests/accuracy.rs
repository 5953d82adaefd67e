//! Accuracy of the sketch + randomized solver against the exact solver and
//! scikit-learn, on synthetic and on real MobileNetV2 embeddings.

mod common;

use common::*;
use fruits_aggregator::synth::Synthetic;
use fruits_formats::ModelId;
use fruits_pca::eigen::Solver;
use fruits_pca::finalize::{Pca, finalize};
use fruits_pca::sketch::ScatterSketch;
use std::path::Path;

const K: usize = 10;

fn pca(rows: &[f32], dim: usize, solver: Solver) -> Pca {
    let mut sketch = ScatterSketch::new(ModelId::of_bytes(b"test"), dim as u32);
    // Several shards merged, as in production.
    for shard in rows.chunks(dim * 3000) {
        let mut s = ScatterSketch::new(ModelId::of_bytes(b"test"), dim as u32);
        s.add_rows(shard).unwrap();
        sketch.merge(&s).unwrap();
    }
    finalize(&sketch, K as u32, solver, 1, 0).unwrap()
}

/// Asserts the acceptance criteria between every pair of exact, randomized and
/// scikit-learn, and prints the measured figures.
fn check_against_references(name: &str, rows: &[f32], dim: usize) {
    let fast = pca(rows, dim, Solver::Randomized { seed: 0 });
    let exact = pca(rows, dim, Solver::Exact);
    let sk = sklearn_pca(rows, dim, K);
    let (fa, ea) = (&fast.artifact, &exact.artifact);
    let pairs = [
        (
            "randomized vs exact",
            components(fa),
            fa.explained_variance.clone(),
            components(ea),
            ea.explained_variance.clone(),
        ),
        (
            "randomized vs sklearn",
            components(fa),
            fa.explained_variance.clone(),
            sk.components.clone(),
            sk.explained_variance.clone(),
        ),
        (
            "exact vs sklearn",
            components(ea),
            ea.explained_variance.clone(),
            sk.components.clone(),
            sk.explained_variance.clone(),
        ),
    ];
    for (what, ca, va, cb, vb) in pairs {
        let rel = worst_relative(&va, &vb);
        let angle = largest_angle_degrees(&ca, &cb);
        eprintln!("{name}: {what}: worst relative variance diff {rel:.3e}, largest top-{K} angle {angle:.3e} deg");
        assert!(rel <= 0.01, "{name}: {what}: variance off by {rel}");
        assert!(angle <= 1.0, "{name}: {what}: subspaces {angle} degrees apart");
    }
    let mean_diff = fa.mean.iter().zip(&sk.mean).map(|(&a, b)| (a as f64 - b).abs()).fold(0.0, f64::max);
    eprintln!("{name}: mean vs sklearn max abs diff {mean_diff:.3e}; k for 90/95/99%: {:?}", fast.components_for);
    assert!(mean_diff < 1e-5, "{name}: mean off by {mean_diff}");
    assert_eq!(fast.components_for, exact.components_for);
}

#[test]
fn synthetic_decaying_spectrum_matches_exact_and_sklearn() {
    let dim = 1280;
    let rows = Synthetic::new(dim, 7).rows(20_000, 8);
    check_against_references("synthetic 20000 x 1280", &rows, dim);
}

/// Real embeddings are computed once by `real_embeddings.py` (ONNX Runtime) and
/// cached under the target directory, keyed by the script, model and photos.
fn real_embeddings() -> Vec<f32> {
    let repo = repo();
    let (photos, model) = (repo.join("data/tuxpaint/fruit"), repo.join("models/mobilenetv2-1.0-224-embed.onnx"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/real_embeddings.py");
    let mut key = std::fs::read(&script).unwrap();
    key.extend(std::fs::read(&model).expect("the model file"));
    let mut pngs: Vec<_> = std::fs::read_dir(&photos)
        .expect("photos: run scripts/fetch-photos.sh")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pngs.sort();
    for p in &pngs {
        key.extend(p.file_name().unwrap().as_encoded_bytes());
        key.extend(std::fs::read(p).unwrap());
    }
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("real-embeddings-{}.f32", &sha256_hex(&key)[..16]));
    if !cache.exists() {
        let tmp = cache.with_extension("partial");
        run_py(
            "real_embeddings.py",
            &[photos.to_str().unwrap(), model.to_str().unwrap(), "80", "1", tmp.to_str().unwrap()],
        );
        std::fs::rename(&tmp, &cache).unwrap();
    }
    read_f32(&cache)
}

#[test]
fn real_fruit_embeddings_match_exact_and_sklearn() {
    let rows = real_embeddings();
    assert!(rows.len() / 1280 >= 2000, "{} rows", rows.len() / 1280);
    check_against_references("real MobileNetV2 fruit embeddings", &rows, 1280);
}
