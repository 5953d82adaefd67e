//! The golden SDK test in Rust, through the exported facade: the same photo and
//! expectations (`golden.properties`) as the Kotlin, Python and Swift tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fruits_ffi::{FruitsClient, FruitsConfig, FruitsError, ModelSource};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bindings/ has a parent").to_path_buf()
}

/// `golden.properties`: `key=value` lines, `#` comments.
fn golden() -> HashMap<String, String> {
    std::fs::read_to_string(repo().join("bindings/tests/golden.properties"))
        .expect("golden.properties")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect()
}

fn config(storage: &Path, golden: &HashMap<String, String>) -> FruitsConfig {
    FruitsConfig {
        storage_dir: storage.display().to_string(),
        model: ModelSource::ManifestPath { path: repo().join(&golden["manifest"]).display().to_string() },
        ingest_url: "http://127.0.0.1:9".into(),
        device_id: "phone-00".into(),
        device_secret: b"not-registered".to_vec(),
        projection_public_key: vec![0; 32],
        upload_attempts: 1,
    }
}

#[test]
fn embeds_the_golden_photo_and_throws_typed_errors() {
    let golden = golden();
    let dir = tempfile::tempdir().unwrap();
    let sdk = FruitsClient::new(config(dir.path(), &golden)).unwrap();
    let photo = std::fs::read(repo().join(&golden["photo"])).unwrap();
    let embedding = sdk.embed(photo.clone()).unwrap();
    assert_eq!(embedding.len(), golden["embedding_len"].parse::<usize>().unwrap());
    let tolerance: f32 = golden["tolerance"].parse().unwrap();
    for (i, want) in golden["embedding_first"].split(',').map(|v| v.trim().parse::<f32>().unwrap()).enumerate() {
        assert!((embedding[i] - want).abs() <= tolerance, "value {i}: {} vs {want}", embedding[i]);
    }

    let corrupt = photo[..golden["corrupt_prefix_bytes"].parse::<usize>().unwrap()].to_vec();
    assert!(matches!(sdk.embed(corrupt), Err(FruitsError::InvalidPhoto { .. })));
    assert!(matches!(sdk.recognize(photo), Err(FruitsError::NotReady { .. })), "no projection synced yet");
    assert!(matches!(sdk.enqueue(vec![1.0], None), Err(FruitsError::InvalidInput { .. })));
    sdk.enqueue(embedding, Some("banana".into())).unwrap();
    assert!(matches!(sdk.flush(), Err(FruitsError::Network { .. })));
    assert_eq!(sdk.status().queued, 1, "a failed flush keeps the queue");

    let bad_key = FruitsConfig { projection_public_key: vec![1; 5], ..config(dir.path(), &golden) };
    assert!(matches!(FruitsClient::new(bad_key), Err(FruitsError::InvalidInput { .. })));
    let missing_model = FruitsConfig {
        model: ModelSource::ManifestPath { path: "/nonexistent.json".into() },
        ..config(dir.path(), &golden)
    };
    assert!(matches!(FruitsClient::new(missing_model), Err(FruitsError::Storage { .. } | FruitsError::Model { .. })));
}
