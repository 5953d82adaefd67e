//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fruits_core::{Embedder, EmbedderOptions, ModelManifest};

/// Repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Path of the shipped manifest.
pub fn manifest_path() -> PathBuf {
    repo_root().join("models/mobilenetv2-1.0-224-embed.json")
}

/// The shipped manifest.
pub fn manifest() -> ModelManifest {
    ModelManifest::load(&manifest_path()).unwrap()
}

/// The shipped model bytes.
pub fn model_bytes() -> Vec<u8> {
    std::fs::read(repo_root().join("models/mobilenetv2-1.0-224-embed.onnx")).unwrap()
}

/// One embedder per test binary.
pub fn embedder() -> &'static Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| Embedder::from_manifest_path(&manifest_path(), EmbedderOptions::default()).unwrap())
}

/// The real fruit photos; panics (test failure) with setup instructions if absent.
pub fn fruit_photos() -> Vec<PathBuf> {
    let dir = repo_root().join("data/tuxpaint/fruit");
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}. Run scripts/setup.sh (fetches the photos)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    photos.sort();
    assert!(photos.len() >= 10, "need >= 10 photos in {}; run scripts/setup.sh", dir.display());
    photos
}

/// A real photo by file name from data/tuxpaint/fruit.
pub fn photo(name: &str) -> Vec<u8> {
    let path = repo_root().join("data/tuxpaint/fruit").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}. Run scripts/setup.sh", path.display()))
}

/// Max abs and mean abs difference.
pub fn diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let mut max = 0f32;
    let mut sum = 0f64;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        max = max.max(d);
        sum += f64::from(d);
    }
    (max, (sum / a.len() as f64) as f32)
}
