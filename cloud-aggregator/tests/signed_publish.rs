//! `aggregator keygen` + `run/finalize --signing-key`: the published `latest.json`
//! verifies under the public key with the verifier phones use.

use fruits_aggregator::signing::{public_path, read_hex32};
use fruits_formats::{ModelId, ProjectionManifest, VerifyError, layout, verify_published};
use std::path::Path;
use std::process::Command;

fn ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_aggregator")).args(args).output().unwrap();
    assert!(out.status.success(), "aggregator {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn latest(root: &Path, model: &ModelId) -> (ProjectionManifest, Vec<u8>) {
    let manifest: ProjectionManifest =
        serde_json::from_slice(&std::fs::read(root.join(layout::latest_key(model))).unwrap()).unwrap();
    let bytes = std::fs::read(root.join(&manifest.key)).unwrap();
    (manifest, bytes)
}

#[test]
fn run_and_finalize_publish_signed_projections_that_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (root, key) = (dir.path().join("store"), dir.path().join("publisher.key"));
    let (root_s, key_s) = (root.to_str().unwrap(), key.to_str().unwrap());
    ok(&["keygen", "--out", key_s]);
    let public = read_hex32(&public_path(&key)).unwrap();
    let synthesised = ok(&["synth", "--rows", "600", "--dim", "24", "--shards", "3", "--out", root_s]);
    let model: ModelId =
        serde_json::from_str::<serde_json::Value>(&synthesised).unwrap()["model_id"].as_str().unwrap().parse().unwrap();
    ok(&["run", "--input", root_s, "--output", root_s, "--k", "4", "--signing-key", key_s]);
    let (manifest, bytes) = latest(&root, &model);
    assert_eq!(
        (manifest.version, manifest.k, manifest.key.as_str()),
        (1, 4, layout::projection_key(&model, 1).as_str())
    );
    let artifact = verify_published(&bytes, &manifest, &public).unwrap();
    assert_eq!(artifact.model_id.to_string(), manifest.model_id);

    let sketch = dir.path().join("all.sketch");
    ok(&["sketch", "--input", root_s, "--output", root_s, "--run-id", "s", "--out", sketch.to_str().unwrap()]);
    ok(&["finalize", "--sketch", sketch.to_str().unwrap(), "--output", root_s, "--k", "3", "--signing-key", key_s]);
    let (manifest, bytes) = latest(&root, &model);
    assert_eq!(manifest.version, 2);
    assert_eq!(verify_published(&bytes, &manifest, &public).unwrap().k, 3);

    // Unsigned publication is refused by the verifier; a second keygen never overwrites.
    ok(&["run", "--input", root_s, "--output", root_s, "--k", "2"]);
    let (manifest, bytes) = latest(&root, &model);
    assert_eq!(
        verify_published(&bytes, &manifest, &public),
        Err(VerifyError::MalformedManifest { field: "signature" })
    );
    let again = Command::new(env!("CARGO_BIN_EXE_aggregator")).args(["keygen", "--out", key_s]).output().unwrap();
    assert!(!again.status.success());
}
