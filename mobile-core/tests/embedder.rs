//! Embedder behaviour: samples, batching, threads, per-item batch errors.

mod common;

use std::sync::Arc;

use common::*;
use fruits_core::{EmbedError, Embedder, EmbedderOptions, cosine_similarity, l2_normalized};

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("samples").join(name)).unwrap()
}

const SAMPLES: [&str; 5] = ["apple_fuji.png", "banana.png", "orange.png", "pear.png", "strawberry.png"];

#[test]
fn samples_embed_to_1280_non_negative() {
    let e = embedder();
    assert_eq!(e.dim(), 1280);
    assert_eq!(e.model_id(), "8ea74d3deaf2f9ae160cfa355f0ab5cf8191e979242b35af25b04c5fef36eb5d");
    for name in SAMPLES {
        let v = e.embed(&sample(name)).unwrap();
        assert_eq!(v.len(), 1280, "{name}");
        assert!(v.iter().all(|x| x.is_finite() && *x >= 0.0), "{name}: ReLU6 + pooling output");
        assert!(v.iter().any(|x| *x > 0.0), "{name}: all zero");
    }
}

#[test]
fn batch_matches_single() {
    let e = embedder();
    let bytes: Vec<Vec<u8>> = SAMPLES.iter().map(|n| sample(n)).collect();
    let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let batch = e.embed_batch(&refs);
    for (b, single) in batch.into_iter().zip(&bytes) {
        let (max, _) = diff(&b.unwrap(), &e.embed(single).unwrap());
        assert!(max <= 1e-5, "batch vs single max abs diff {max}");
    }
}

#[test]
fn batch_reports_per_item_errors() {
    let e = embedder();
    let good = sample("pear.png");
    let out = e.embed_batch(&[&good, b"", b"not an image", &good]);
    assert_eq!(out.len(), 4);
    assert!(matches!(out[1], Err(EmbedError::EmptyInput)));
    assert!(matches!(out[2], Err(EmbedError::UnknownFormat { .. })));
    assert_eq!(out[0].as_ref().unwrap(), out[3].as_ref().unwrap());
    assert!(e.embed_batch(&[]).is_empty());
}

#[test]
fn shared_across_threads() {
    let e = Arc::new(embedder().clone());
    let expected = e.embed(&sample("orange.png")).unwrap();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || e.embed(&sample("orange.png")).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), expected);
    }
}

#[test]
fn similar_fruits_are_closer() {
    let e = embedder();
    let emb = |n: &str| l2_normalized(&e.embed(&photo(n)).unwrap());
    let orange = emb("orange.png");
    let mandarine = emb("mandarine.png");
    let banana = emb("banana.png");
    let close = cosine_similarity(&orange, &mandarine).unwrap();
    let far = cosine_similarity(&orange, &banana).unwrap();
    eprintln!("cos(orange, mandarine) {close:.3}, cos(orange, banana) {far:.3}");
    assert!(close > far);
}

#[test]
fn wrong_tensor_shape_is_typed() {
    let e = embedder();
    let t = fruits_core::InputTensor { shape: [3, 224, 224], data: vec![0.0; 3 * 224 * 224] };
    assert!(matches!(e.embed_tensor(&t), Err(EmbedError::TensorShape { .. })));
}

/// On x86-64 with AVX2 and FMA every convolution of the model runs as a Fruits
/// operator (`fruits_core::kernels`) and no tract matrix product is left;
/// elsewhere (ARM, older x86) the plan is tract's alone.
#[test]
fn convolutions_run_as_fruits_operators_where_the_cpu_allows() {
    use tract_onnx::tract_core::tract_linalg::isa::{self, Arch, Isa};
    let ops: Vec<String> = common::embedder().plan().model().nodes().iter().map(|n| n.op.name().to_string()).collect();
    let count = |name: &str| ops.iter().filter(|o| *o == name).count();
    let native = isa::native();
    let ours = native.arch() == Some(Arch::X86_64) && native.has(Isa::X86_64Avx2) && native.has(Isa::X86_64Fma);
    if ours {
        // 34 pointwise + the first 3x3 layer; 17 depthwise.
        assert_eq!((count("FruitsDirectConv"), count("FruitsDirectDepthwise")), (35, 17), "{ops:?}");
        assert_eq!(count("OptMatMul") + count("DepthWiseConv"), 0, "{ops:?}");
    } else {
        assert_eq!(count("FruitsDirectConv") + count("FruitsDirectDepthwise"), 0, "{ops:?}");
    }
}

/// The int8 model (QDQ, `models/quantize_int8.py`) runs through the same engine and its
/// embeddings stay close to the f32 ones on every real photo: measured min 0.970, mean
/// 0.984 (BENCHMARKS.md); ONNX Runtime's own int8 kernels on an AVX2 host reach 0.66.
#[test]
fn the_int8_model_embeds_every_real_photo_close_to_the_f32_model() {
    let int8 = Embedder::from_manifest_path(
        &repo_root().join("models/mobilenetv2-1.0-224-embed-int8.json"),
        EmbedderOptions::default(),
    )
    .unwrap();
    assert_eq!(int8.manifest().precision, fruits_core::Precision::Int8);
    assert_eq!(int8.dim(), embedder().dim());
    let mut cosines = Vec::new();
    for photo in fruit_photos() {
        let bytes = std::fs::read(&photo).unwrap();
        let a = l2_normalized(&int8.embed(&bytes).unwrap());
        let b = l2_normalized(&embedder().embed(&bytes).unwrap());
        cosines.push(cosine_similarity(&a, &b).unwrap());
    }
    let min = cosines.iter().copied().fold(f32::INFINITY, f32::min);
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    eprintln!("int8 vs f32 over {} photos: cosine min {min:.4} mean {mean:.4}", cosines.len());
    assert!(min >= 0.95 && mean >= 0.975, "int8 embeddings drifted: min {min}, mean {mean}");
}
