//! The S3 backend against a real S3 server (Garage on loopback): the `Storage`
//! contract, and `aggregator run` on S3 giving the same artifact as on a directory.

mod garage;

use fruits_aggregator::storage::Storage;
use fruits_formats::{ModelId, ProjectionArtifact, ProjectionManifest, layout, verify_published};
use garage::Garage;
use std::io;
use std::process::Command;

fn aggregator(env: &std::collections::BTreeMap<String, String>, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_aggregator")).args(args).envs(env).output().unwrap();
    assert!(out.status.success(), "aggregator {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn s3_put_get_list_round_trip_with_prefixes() {
    let garage = Garage::start();
    let root = garage.storage("");
    let scoped = garage.storage("tenant/a");
    for key in ["incoming/b/2.shard", "incoming/a/1.shard", "models/x.bin", "incoming2/z"] {
        scoped.put(key, key.as_bytes()).unwrap();
    }
    root.put("elsewhere/k", b"outside").unwrap();
    assert_eq!(scoped.list("incoming/").unwrap(), ["incoming/a/1.shard", "incoming/b/2.shard"]);
    assert_eq!(scoped.list("incoming").unwrap().len(), 3);
    assert_eq!(scoped.list("").unwrap().len(), 4);
    assert_eq!(scoped.list("nothing/").unwrap(), Vec::<String>::new());
    assert_eq!(scoped.get("models/x.bin").unwrap(), b"models/x.bin");
    assert_eq!(root.get("tenant/a/models/x.bin").unwrap(), b"models/x.bin");
    assert_eq!(root.list("").unwrap().len(), 5);
    // Rewriting a key replaces it (retries rewrite the same deterministic key).
    scoped.put("models/x.bin", b"v2").unwrap();
    assert_eq!(scoped.get("models/x.bin").unwrap(), b"v2");
    assert_eq!(scoped.get("missing").unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(scoped.get("../x").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    // An empty object and a large (multi-MB) one survive.
    scoped.put("empty", b"").unwrap();
    assert_eq!(scoped.get("empty").unwrap(), b"");
    let big: Vec<u8> = (0..6_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
    scoped.put("big.bin", &big).unwrap();
    assert_eq!(scoped.get("big.bin").unwrap(), big);
    // Many keys: listing paginates past 1000.
    use rayon::prelude::*;
    (0..1100).into_par_iter().for_each(|i| root.put(&format!("many/{i:05}"), b"x").unwrap());
    assert_eq!(root.list("many/").unwrap().len(), 1100);
}

fn artifact_at(storage: &dyn Storage, model: &ModelId) -> ProjectionArtifact {
    let mut a = ProjectionArtifact::decode(&storage.get(&layout::projection_key(model, 1)).unwrap()).unwrap();
    a.created_unix_ms = 0;
    a
}

#[test]
fn aggregator_run_on_s3_matches_the_local_run() {
    let garage = Garage::start();
    let local = tempfile::tempdir().unwrap();
    let local_dir = local.path().to_str().unwrap();
    let synth = ["synth", "--rows", "3000", "--dim", "48", "--shards", "12", "--seed", "7", "--out"];
    let synthesised = aggregator(&garage.env, &[&synth[..], &[local_dir]].concat());
    let model: ModelId =
        serde_json::from_str::<serde_json::Value>(&synthesised).unwrap()["model_id"].as_str().unwrap().parse().unwrap();
    aggregator(&garage.env, &[&synth[..], &["s3://fruits/"]].concat());
    let key = local.path().join("publisher.key");
    aggregator(&garage.env, &["keygen", "--out", key.to_str().unwrap()]);
    let run = ["run", "--k", "8", "--run-id", "r1", "--signing-key", key.to_str().unwrap()];
    aggregator(&garage.env, &[&run[..], &["--input", local_dir, "--output", local_dir]].concat());
    let report =
        aggregator(&garage.env, &[&run[..], &["--input", "s3://fruits/", "--output", "s3://fruits/"]].concat());
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["shards_accepted"], 12);
    let s3 = garage.storage("");
    assert_eq!(s3.list("incoming/").unwrap().len(), 12);
    assert!(s3.get("runs/r1/report.json").is_ok());
    let local = fruits_aggregator::storage::LocalDir::new(local.path());
    assert_eq!(artifact_at(&s3, &model), artifact_at(&local, &model));
    // The S3 publication verifies under the public key with the shared verifier.
    let manifest: ProjectionManifest = serde_json::from_slice(&s3.get(&layout::latest_key(&model)).unwrap()).unwrap();
    let public = fruits_aggregator::signing::read_hex32(&fruits_aggregator::signing::public_path(&key)).unwrap();
    let verified = verify_published(&s3.get(&manifest.key).unwrap(), &manifest, &public).unwrap();
    assert_eq!(verified.version, 1);
}
