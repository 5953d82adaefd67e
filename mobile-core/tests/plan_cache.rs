//! The plan cache: a second load reads it and embeds as the ONNX-built plan
//! does; a corrupt, truncated, stale or unwritable cache is never an error.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use fruits_core::{Embedder, EmbedderOptions, PlanOrigin};

fn options(dir: &Path) -> EmbedderOptions {
    EmbedderOptions { plan_cache_dir: Some(dir.to_path_buf()), ..Default::default() }
}

/// Loads through the cache in `dir` and waits for its background write.
fn load(dir: &Path) -> Embedder {
    let e = Embedder::from_manifest_path(&manifest_path(), options(dir)).unwrap();
    e.wait_for_plan_cache();
    e
}

/// The one cache file in `dir`.
fn cache_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// How many nodes of each operator a plan runs.
fn operators(e: &Embedder) -> std::collections::BTreeMap<String, usize> {
    let mut count = std::collections::BTreeMap::new();
    for node in e.plan().model().nodes() {
        *count.entry(node.op.name().to_string()).or_default() += 1;
    }
    count
}

/// Embeddings of real photos agree with the uncached embedder's.
fn assert_embeds_like_onnx(e: &Embedder, photos: &[&str]) {
    for name in photos {
        let photo = photo(name);
        let (max, _) = diff(&e.embed(&photo).unwrap(), &embedder().embed(&photo).unwrap());
        assert!(max <= 1e-4, "{name}: max abs diff {max}");
    }
}

#[test]
fn second_load_reads_the_cache_and_embeds_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let first = load(dir.path());
    assert_eq!(first.plan_origin(), PlanOrigin::Onnx);
    assert!(first.wait_for_plan_cache(), "the first load wrote the cache");
    let file = cache_file(dir.path());
    assert_eq!(file.file_name().unwrap().to_str().unwrap(), format!("{}.plan", manifest().sha256));
    let cached = load(dir.path());
    assert_eq!(cached.plan_origin(), PlanOrigin::Cache);
    assert_embeds_like_onnx(&cached, &["apple_red.png", "pineapple.png", "strawberry.png"]);
    // The graph read back runs the same operators as the one built from ONNX: Fruits' own
    // convolutions (none on a CPU without AVX2 and FMA), not tract's generic ones.
    assert_eq!(operators(&cached), operators(&first));
}

#[test]
fn a_cache_hit_does_not_read_the_model_file() {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path());
    let missing = dir.path().join("no-such-model.onnx");
    let e = Embedder::from_files(&missing, manifest(), options(dir.path())).unwrap();
    assert_eq!(e.plan_origin(), PlanOrigin::Cache);
    // Without the cache the same call needs the file.
    let no_cache = tempfile::tempdir().unwrap();
    assert!(Embedder::from_files(&missing, manifest(), options(no_cache.path())).is_err());
}

#[test]
fn a_damaged_cache_is_rebuilt_from_the_model() {
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 4] = [
        ("payload bit flip", |b| {
            let mid = b.len() / 2;
            b[mid] ^= 0x01;
        }),
        ("truncated", |b| b.truncate(b.len() - 1000)),
        ("key changed", |b| b[8] ^= 0xff),
        ("not a cache", |b| *b = b"hello".to_vec()),
    ];
    let dir = tempfile::tempdir().unwrap();
    load(dir.path());
    let file = cache_file(dir.path());
    let good = std::fs::read(&file).unwrap();
    for (what, damage) in damages {
        let mut bytes = good.clone();
        damage(&mut bytes);
        std::fs::write(&file, &bytes).unwrap();
        let e = load(dir.path());
        assert_eq!(e.plan_origin(), PlanOrigin::Onnx, "{what}");
        assert_embeds_like_onnx(&e, &["pineapple.png"]);
        // The archive is deterministic, so the rewrite restores the file exactly.
        assert!(std::fs::read(&file).unwrap() == good, "{what}: the cache is rewritten");
    }
}

#[test]
fn another_manifest_does_not_use_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    load(dir.path());
    // Same model file, another input contract: the key differs.
    let mut manifest = manifest();
    manifest.input.normalization.offset = vec![0.0; 3];
    let e = Embedder::from_bytes(&model_bytes(), manifest, options(dir.path())).unwrap();
    assert_eq!(e.plan_origin(), PlanOrigin::Onnx);
}

#[test]
fn an_unwritable_cache_dir_only_costs_time() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    for _ in 0..2 {
        let e = load(&not_a_dir);
        assert_eq!(e.plan_origin(), PlanOrigin::Onnx);
        assert!(!e.wait_for_plan_cache());
        assert_eq!(e.embed(&photo("pineapple.png")).unwrap(), embedder().embed(&photo("pineapple.png")).unwrap());
    }
}

/// The int8 model's graph, its quantise/dequantise pairs fused, is cached like the f32
/// one's, and the plan lowered from it runs the same operators and computes the very same
/// bits (a cached plan with other kernels would not: in int8 a last-bit difference moves
/// values across rounding boundaries).
#[test]
fn the_int8_model_is_cached_and_embeds_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let int8 = repo_root().join("models/mobilenetv2-1.0-224-embed-int8.json");
    let first = Embedder::from_manifest_path(&int8, options(dir.path())).unwrap();
    assert_eq!(first.plan_origin(), PlanOrigin::Onnx);
    assert!(first.wait_for_plan_cache(), "the first load wrote the cache");
    let cached = Embedder::from_manifest_path(&int8, options(dir.path())).unwrap();
    assert_eq!(cached.plan_origin(), PlanOrigin::Cache);
    assert_eq!(operators(&cached), operators(&first));
    for name in ["apple_red.png", "pineapple.png", "banana.png", "strawberry.png", "pear.png"] {
        let bytes = photo(name);
        let (a, b) = (first.embed(&bytes).unwrap(), cached.embed(&bytes).unwrap());
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{name}: the cached plan differs");
    }
}
