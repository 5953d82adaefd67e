//! `aggregator` end to end: synth, run with every kind of bad shard, inspect, and
//! the sketch / merge / finalize composition, which publishes the bytes `run` does.

mod common;

use common::*;
use fruits_formats::codec::{open_frame, seal_frame};
use fruits_formats::shard::Push;
use fruits_formats::shard::SHARD_FRAME;
use fruits_formats::{Encoding, ModelId, ProjectionArtifact, Shard, ShardBuilder, ShardHeader, codec, layout};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const DIM: u32 = 64;

fn aggregator(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aggregator")).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (success, stdout, stderr) = aggregator(args);
    assert!(success, "aggregator {args:?} failed: {stderr}");
    stdout
}

fn header(model: ModelId, dim: u32, rows: u32, encoding: Encoding) -> ShardHeader {
    ShardHeader {
        model_id: model,
        dim,
        rows,
        encoding,
        device_id: "bad-device".into(),
        batch_id: "b".into(),
        created_unix_ms: 0,
        label_vocabulary: Vec::new(),
    }
}

/// Writes one shard of each kind of bad input; returns the kinds expected.
fn write_bad_shards(dir: &Path, good: &[u8], model: ModelId) -> Vec<&'static str> {
    let put = |name: &str, bytes: &[u8]| {
        let path = dir.join("incoming/2000-01-02/bad-device").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    put("truncated.shard", &good[..good.len() / 2]);
    let mut flipped = good.to_vec();
    flipped[good.len() / 2] ^= 0x10;
    put("corrupted.shard", &flipped);
    let values = vec![0.5f32; 3 * DIM as usize];
    put(
        "other-model.shard",
        &Shard::new(header(ModelId::of_bytes(b"other"), DIM, 3, Encoding::F32), values.clone(), None)
            .unwrap()
            .encode()
            .unwrap(),
    );
    put(
        "other-dim.shard",
        &Shard::new(header(model, DIM / 2, 6, Encoding::F32), values.clone(), None).unwrap().encode().unwrap(),
    );
    let projected = Encoding::ProjectedF16 { projection_version: 1 };
    put(
        "projected.shard",
        &Shard::new(header(model, DIM, 3, projected), values.clone(), None).unwrap().encode().unwrap(),
    );
    // A NaN written past the decoder's checks, under a valid checksum.
    let body = open_frame(&SHARD_FRAME, good).unwrap();
    let mut body = body.to_vec();
    let at = body.len() - 8;
    body[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    put("nan.shard", &seal_frame(&SHARD_FRAME, &body));
    // A header declaring a hostile size, with almost no payload.
    let huge = codec::to_bincode("shard header", &header(model, 1 << 20, 1 << 30, Encoding::F32)).unwrap();
    put("hostile.shard", &seal_frame(&SHARD_FRAME, &[(huge.len() as u32).to_le_bytes().to_vec(), huge].concat()));
    put("garbage.shard", b"this is not a shard at all");
    vec!["truncated", "malformed", "wrong_model", "wrong_dim", "projected", "non_finite", "limit_exceeded", "malformed"]
}

#[test]
fn run_quarantines_every_bad_shard_and_publishes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    let synth: Value = serde_json::from_str(&ok(&[
        "synth",
        "--rows",
        "3000",
        "--dim",
        "64",
        "--shards",
        "6",
        "--out",
        input.to_str().unwrap(),
    ]))
    .unwrap();
    let model: ModelId = synth["model_id"].as_str().unwrap().parse().unwrap();
    let good_path = walk(&input).into_iter().next().unwrap();
    let good = std::fs::read(&good_path).unwrap();
    let mut kinds = write_bad_shards(&input, &good, model);
    std::fs::write(input.join("notes.txt"), "not a shard, not listed").unwrap();

    let args =
        ["run", "--input", input.to_str().unwrap(), "--output", output.to_str().unwrap(), "--k", "5", "--run-id", "r1"];
    let report: Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(report["shards_read"], 14);
    assert_eq!(report["shards_accepted"], 6);
    assert_eq!(report["shards_rejected"], 8);
    assert_eq!(report["rows"], 3000);
    let mut got: Vec<&str> =
        report["rejected"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    got.sort();
    kinds.sort();
    assert_eq!(got, kinds);
    let on_disk: Value = serde_json::from_slice(&std::fs::read(output.join("runs/r1/report.json")).unwrap()).unwrap();
    assert_eq!(on_disk["shards_rejected"], 8);
    for k in ["list_ms", "sketch_ms", "finalize_ms", "publish_ms", "total_ms"] {
        assert!(on_disk["timings"][k].is_u64(), "{k}");
    }
    assert_eq!(on_disk["components_for"].as_array().unwrap().len(), 3);

    // Every bad shard is copied byte for byte beside its reason.
    for r in report["rejected"].as_array().unwrap() {
        let key = r["key"].as_str().unwrap();
        let copy = output.join("quarantine/r1").join(key);
        assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(input.join(key)).unwrap(), "{key}");
        let reason: Value =
            serde_json::from_slice(&std::fs::read(format!("{}.reason.json", copy.display())).unwrap()).unwrap();
        assert_eq!(reason["kind"], r["kind"]);
    }

    let latest: Value =
        serde_json::from_slice(&std::fs::read(output.join(layout::latest_key(&model))).unwrap()).unwrap();
    let artifact_bytes = std::fs::read(output.join(layout::projection_key(&model, 1))).unwrap();
    assert_eq!(latest["version"], 1);
    assert_eq!(latest["sha256"].as_str().unwrap(), sha256_hex(&artifact_bytes));
    assert_eq!(latest["model_id"].as_str().unwrap(), model.to_string());
    let artifact = ProjectionArtifact::decode(&artifact_bytes).unwrap();
    assert_eq!((artifact.k, artifact.dim, artifact.rows, artifact.model_id), (5, DIM, 3000, model));

    let inspected: Value = serde_json::from_str(&ok(&[
        "inspect",
        output.join(layout::projection_key(&model, 1)).to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(inspected["kind"], "projection artifact");
    assert_eq!(inspected["components"].as_array().unwrap().len(), 5 * DIM as usize);
    let inspected: Value = serde_json::from_str(&ok(&["inspect", good_path.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!((inspected["kind"].as_str(), inspected["dim"].as_u64()), (Some("shard"), Some(DIM as u64)));
    assert!(!aggregator(&["inspect", input.join("notes.txt").to_str().unwrap(), "--json"]).0);

    // A second run publishes the next version.
    let args2 = [
        "run",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--k",
        "5",
        "--run-id",
        "r2",
        "--exact",
    ];
    let report2: Value = serde_json::from_str(&ok(&args2)).unwrap();
    assert_eq!(report2["published"]["version"], 2);
    let exact =
        ProjectionArtifact::decode(&std::fs::read(output.join(layout::projection_key(&model, 2))).unwrap()).unwrap();
    assert!(worst_component_diff(&components(&exact), &components(&artifact)) < 1e-5);
}

/// Labelled shards of two classes apart (the head has something to learn), written under
/// `input` in the storage layout.
/// Writes 800 labelled rows of one model as four shards; that model.
fn write_labelled_shards(input: &Path) -> ModelId {
    let model = ModelId::of_bytes(b"compose");
    let rows = fruits_aggregator::synth::Synthetic::new(DIM as usize, 1).rows(800, 2);
    for (i, chunk) in rows.chunks(200 * DIM as usize).enumerate() {
        let mut batch = ShardBuilder::new(model, DIM, Encoding::F32, format!("dev-{}", i % 2));
        for (r, row) in chunk.chunks(DIM as usize).enumerate() {
            let (label, shift) = if r % 2 == 0 { ("Apple", 3.0) } else { ("Pear", -3.0) };
            let row: Vec<f32> = row.iter().enumerate().map(|(c, v)| if c < 4 { v + shift } else { *v }).collect();
            assert_eq!(batch.push(&row, Some(label), 7).unwrap(), Push::Added);
        }
        let path = input.join(layout::incoming_key(&format!("dev-{}", i % 2), &format!("b{i}")));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, batch.finish(format!("b{i}")).unwrap().encode().unwrap()).unwrap();
    }
    model
}

#[test]
fn sketch_merge_finalize_publish_the_very_bytes_of_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, composed_out, run_out) = (tmp.path().join("in"), tmp.path().join("composed"), tmp.path().join("run"));
    let model = write_labelled_shards(&input);
    let key = tmp.path().join("publisher.key");
    ok(&["keygen", "--out", key.to_str().unwrap()]);
    let keys: Vec<String> =
        walk(&input).iter().map(|p| p.strip_prefix(&input).unwrap().to_str().unwrap().to_owned()).collect();
    assert_eq!(keys.len(), 4);
    let part = |name: &str, keys: &[String]| {
        let out = tmp.path().join(name);
        let mut args = vec![
            "sketch",
            "--input",
            input.to_str().unwrap(),
            "--output",
            composed_out.to_str().unwrap(),
            "--run-id",
            "s",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(keys.iter().map(String::as_str));
        ok(&args);
        out
    };
    let (a, b) = (part("a.sketch", &keys[..2]), part("b.sketch", &keys[2..]));
    let merged = tmp.path().join("all.sketch");
    ok(&["merge", "--out", merged.to_str().unwrap(), b.to_str().unwrap(), a.to_str().unwrap()]);
    let inspected: Value = serde_json::from_str(&ok(&["inspect", merged.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!((inspected["kind"].as_str(), inspected["rows"].as_u64()), (Some("sketch"), Some(800)));
    let publish = ["--k", "4", "--signing-key", key.to_str().unwrap(), "--created-unix-ms", "1700000000000"];
    let mut finalize =
        vec!["finalize", "--sketch", merged.to_str().unwrap(), "--output", composed_out.to_str().unwrap()];
    finalize.extend(["--input", input.to_str().unwrap()]);
    finalize.extend(publish);
    let first: Value = serde_json::from_str(&ok(&finalize)).unwrap();
    assert!(first["head"]["classes"] == 2, "the head was trained: {first}");
    // A retried finalize of the same sketch publishes nothing new.
    let again: Value = serde_json::from_str(&ok(&finalize)).unwrap();
    assert_eq!((first["version"].as_u64(), &first), (Some(1), &again));
    assert!(!composed_out.join(layout::projection_key(&model, 2)).exists());

    let mut run = vec!["run", "--input", input.to_str().unwrap(), "--output", run_out.to_str().unwrap()];
    run.extend(["--run-id", "r"]);
    run.extend(publish);
    let report: Value = serde_json::from_str(&ok(&run)).unwrap();
    assert_eq!(report["published_new"], true);
    // The same tree over the same sorted keys, the same head rows, key and time: the one
    // publish step gives the same bytes on both paths.
    let read = |dir: &Path, key: &str| std::fs::read(dir.join(key)).unwrap();
    let artifact = read(&run_out, &layout::projection_key(&model, 1));
    assert_eq!(read(&composed_out, &layout::projection_key(&model, 1)), artifact, "artifact bytes");
    assert_eq!(
        read(&composed_out, &layout::latest_key(&model)),
        read(&run_out, &layout::latest_key(&model)),
        "latest.json"
    );
    assert!(ProjectionArtifact::decode(&artifact).unwrap().head.is_some());

    // And `run` over what `finalize` published finds it current: nothing new.
    run[4] = composed_out.to_str().unwrap();
    let rerun: Value = serde_json::from_str(&ok(&run)).unwrap();
    assert_eq!((rerun["published_new"].as_bool(), rerun["published"]["version"].as_u64()), (Some(false), Some(1)));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|e| e == "shard") {
            out.push(p);
        }
    }
    out.sort();
    out
}
