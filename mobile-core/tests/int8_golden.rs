//! The int8 model's embeddings of two sample photos, against the ones this engine computed
//! on the x86-64 host that wrote `golden/int8-embeddings.json`: on another CPU (ARM64 under
//! QEMU in `scripts/cross.sh`, another x86 with other kernels) tract sums the convolutions
//! in another order, and in the int8 model a last-bit difference sometimes moves a value
//! across a rounding boundary, so the check is a tolerance, not bit-equality: cosine at
//! least 0.995 per photo (the output says how many of the 1280 values are bit-equal).
//!
//! `FRUITS_WRITE_GOLDEN=1 cargo test -p fruits-core --test int8_golden` rewrites the file.

mod common;

use common::repo_root;
use fruits_core::{Embedder, EmbedderOptions};
use std::collections::BTreeMap;

const GOLDEN: &str = "mobile-core/tests/golden/int8-embeddings.json";
const PHOTOS: [&str; 2] = ["samples/banana.png", "samples/strawberry.png"];

#[test]
fn int8_embeddings_match_the_hosts() {
    let manifest = repo_root().join("models/mobilenetv2-1.0-224-embed-int8.json");
    let int8 = Embedder::from_manifest_path(&manifest, EmbedderOptions::default()).unwrap();
    let ours: BTreeMap<String, Vec<f32>> = PHOTOS
        .iter()
        .map(|p| (p.to_string(), int8.embed(&std::fs::read(repo_root().join(p)).unwrap()).unwrap()))
        .collect();
    let path = repo_root().join(GOLDEN);
    if std::env::var_os("FRUITS_WRITE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string(&ours).unwrap()).unwrap();
    }
    let golden: BTreeMap<String, Vec<f32>> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(golden.keys().collect::<Vec<_>>(), ours.keys().collect::<Vec<_>>());
    for (photo, want) in &golden {
        let got = &ours[photo];
        assert_eq!(got.len(), want.len());
        let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let dot: f64 = got.iter().zip(want).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        let cosine = dot / (norm(got) * norm(want));
        let equal = got.iter().zip(want).filter(|(a, b)| a.to_bits() == b.to_bits()).count();
        eprintln!("{photo}: cosine {cosine:.6} to the host's, {equal} of {} values bit-equal", want.len());
        assert!(cosine >= 0.995, "{photo}: cosine {cosine} to the host's ({equal} values bit-equal)");
    }
}
