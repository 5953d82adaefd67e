//! Helpers shared by the integration tests: the Python references, subspace
//! comparisons and data exchange through raw float32 files.
#![allow(dead_code)] // each test binary uses a different subset

use fruits_formats::ProjectionArtifact;
use nalgebra::DMatrix;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The Python interpreter: `FRUITS_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("FRUITS_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a script from `tests/py`, failing the test with its stderr if it fails.
pub fn run_py(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py").join(script);
    let out = Command::new(python()).arg(&path).args(args).output().expect("python3 (or FRUITS_PYTHON) must run");
    assert!(out.status.success(), "{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Writes values as little-endian float32.
pub fn write_f32(path: &Path, values: &[f32]) {
    std::fs::write(path, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

/// Reads little-endian float32 values.
pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// scikit-learn's PCA of the rows.
pub struct SkPca {
    pub mean: Vec<f64>,
    pub components: DMatrix<f64>,
    pub explained_variance: Vec<f64>,
}

/// Runs `sklearn_pca.py` on `rows` (n x dim).
pub fn sklearn_pca(rows: &[f32], dim: usize, k: usize) -> SkPca {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("rows.f32"), dir.path().join("pca.json"));
    write_f32(&input, rows);
    let n = (rows.len() / dim).to_string();
    run_py(
        "sklearn_pca.py",
        &[input.to_str().unwrap(), &n, &dim.to_string(), &k.to_string(), output.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(output).unwrap()).unwrap();
    let floats =
        |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<f64>>();
    let comps: Vec<f64> = v["components"].as_array().unwrap().iter().flat_map(floats).collect();
    SkPca {
        mean: floats(&v["mean"]),
        components: DMatrix::from_row_slice(k, dim, &comps),
        explained_variance: floats(&v["explained_variance"]),
    }
}

/// The artifact's components as a k x dim matrix.
pub fn components(a: &ProjectionArtifact) -> DMatrix<f64> {
    DMatrix::from_row_slice(a.k as usize, a.dim as usize, &a.components.iter().map(|&v| v as f64).collect::<Vec<_>>())
}

/// Largest principal angle, in degrees, between the row spaces of two k x dim
/// matrices with orthonormal rows.
pub fn largest_angle_degrees(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    let m = a * b.transpose();
    let smallest_cos = m.singular_values().iter().copied().fold(f64::INFINITY, f64::min);
    smallest_cos.clamp(-1.0, 1.0).acos().to_degrees()
}

/// Largest relative difference between two lists of variances.
pub fn worst_relative(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs()).fold(0.0, f64::max)
}

/// Largest difference between matching rows of two k x dim matrices, each row
/// taken with the sign that makes them agree.
pub fn worst_component_diff(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (0..a.nrows())
        .map(|i| {
            let (x, y) = (a.row(i), b.row(i));
            let sign = if x.dot(&y) < 0.0 { -1.0 } else { 1.0 };
            (x - y * sign).abs().max()
        })
        .fold(0.0, f64::max)
}

/// Hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
