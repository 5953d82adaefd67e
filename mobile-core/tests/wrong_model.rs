//! Models that do not match their manifest are refused with typed errors.

mod common;

use common::*;
use fruits_core::{EmbedError, Embedder, EmbedderOptions, Layout, ModelManifest, manifest::sha256_hex};

fn load(bytes: &[u8], manifest: ModelManifest) -> EmbedError {
    Embedder::from_bytes(bytes, manifest, EmbedderOptions::default()).unwrap_err()
}

#[test]
fn corrupted_model_bytes_fail_checksum() {
    let mut bytes = model_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    let err = load(&bytes, manifest());
    assert!(matches!(err, EmbedError::ModelChecksumMismatch { .. }), "{err:?}");
}

#[test]
fn manifest_sha_mismatch() {
    let mut m = manifest();
    m.sha256 = "0".repeat(64);
    let err = load(&model_bytes(), m);
    match err {
        EmbedError::ModelChecksumMismatch { expected, actual } => {
            assert_eq!(expected, "0".repeat(64));
            assert_eq!(actual, manifest().sha256);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_model_with_matching_sha_is_inference_error() {
    let bytes = b"this is not an onnx protobuf".repeat(10);
    let mut m = manifest();
    m.sha256 = sha256_hex(&bytes);
    let err = load(&bytes, m);
    assert!(matches!(err, EmbedError::Inference(_)), "{err:?}");
}

#[test]
fn truncated_model_with_matching_sha_is_typed() {
    let bytes = model_bytes()[..100_000].to_vec();
    let mut m = manifest();
    m.sha256 = sha256_hex(&bytes);
    let err = load(&bytes, m);
    assert!(matches!(err, EmbedError::Inference(_) | EmbedError::ModelShapeMismatch(_)), "{err:?}");
}

#[test]
fn declared_shapes_must_match() {
    type Edit = fn(&mut ModelManifest);
    let cases: [(&str, Edit); 5] = [
        ("output dim", |m| m.output.dim = 1000),
        ("input name", |m| m.input.name = "input".into()),
        ("output name", |m| m.output.name = "logits".into()),
        ("height", |m| m.input.height = 192),
        ("layout", |m| m.input.layout = Layout::Nchw),
    ];
    let bytes = model_bytes();
    for (what, edit) in cases {
        let mut m = manifest();
        edit(&mut m);
        let err = load(&bytes, m);
        assert!(matches!(err, EmbedError::ModelShapeMismatch(_)), "{what}: {err:?}");
    }
}

#[test]
fn missing_model_file_is_io_error() {
    let err =
        Embedder::from_files("/nonexistent/model.onnx".as_ref(), manifest(), EmbedderOptions::default()).unwrap_err();
    assert!(matches!(err, EmbedError::Io { .. }), "{err:?}");
}
