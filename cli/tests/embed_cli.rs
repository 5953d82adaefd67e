//! End-to-end tests of `fruits embed`.

use std::process::Command;

mod common;
use common::{repo_root, shard_files};

fn fruits() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fruits"));
    c.current_dir(repo_root());
    c.env_remove("FRUITS_MODEL_DIR");
    c
}

fn lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn embeds_the_samples_directory() {
    let out = fruits().args(["embed", "samples/"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records = lines(&out.stdout);
    assert_eq!(records.len(), 5);
    for r in &records {
        assert_eq!(r["dim"], 1280);
        assert_eq!(r["embedding"].as_array().unwrap().len(), 1280);
        assert!(r["path"].as_str().unwrap().starts_with("samples/"));
    }
}

#[test]
fn plan_cache_is_written_by_the_first_run_and_used_by_the_next() {
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        let out = fruits()
            .env("FRUITS_LOG", "debug")
            .args(["embed", "--plan-cache"])
            .arg(cache.path())
            .arg("samples/pear.png")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (lines(&out.stdout).remove(0)["embedding"].clone(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (first, log) = run();
    assert!(log.contains("Onnx"), "{log}");
    let files: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(files.len() == 1 && files[0].extension().unwrap() == "plan", "{files:?}");
    let (second, log) = run();
    assert!(log.contains("Cache"), "{log}");
    let max_diff = first
        .as_array()
        .unwrap()
        .iter()
        .zip(second.as_array().unwrap())
        .map(|(a, b)| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs())
        .fold(0.0, f64::max);
    assert!(max_diff <= 1e-4, "{max_diff}");
}

#[test]
fn per_file_errors_do_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::copy(repo_root().join("samples/pear.png"), nested.join("pear.png")).unwrap();
    std::fs::write(dir.path().join("broken.jpg"), b"\xFF\xD8\xFF\xE0 truncated").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored: not an image name").unwrap();
    let out_file = dir.path().join("out.jsonl");
    let out = fruits()
        .args(["embed", "--batch", "2", "--out"])
        .arg(&out_file)
        .arg(dir.path())
        .arg("samples/banana.png")
        .arg("does-not-exist.png")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.jpg") && stderr.contains("[decode]"), "{stderr}");
    assert!(stderr.contains("does-not-exist.png") && stderr.contains("[io]"), "{stderr}");
    assert!(!stderr.contains("notes.txt"));
    let records = lines(&std::fs::read(&out_file).unwrap());
    let paths: Vec<&str> = records.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths[0].ends_with("a/b/pear.png") && paths[1] == "samples/banana.png");
}

#[test]
fn explicit_model_and_env_dir() {
    let out = fruits()
        .args(["embed", "samples/pear.png", "--model", "models/mobilenetv2-1.0-224-embed.onnx"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tmp = tempfile::tempdir().unwrap();
    let out = fruits()
        .current_dir(tmp.path())
        .env("FRUITS_MODEL_DIR", repo_root().join("models"))
        .arg("embed")
        .arg(repo_root().join("samples/pear.png"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines(&out.stdout).len(), 1);
}

#[test]
fn bad_manifest_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m.json");
    std::fs::write(&m, "{}").unwrap();
    let out = fruits().args(["embed", "samples/pear.png", "--manifest"]).arg(&m).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid model manifest"));
}

#[test]
fn shard_output_matches_jsonl_and_labels_rows_by_folder() {
    let tmp = tempfile::tempdir().unwrap();
    // A Fruits-360-style tree: Training/<Class>/<image>.
    for (class, photo) in [("Banana", "banana.png"), ("Pear", "pear.png"), ("Pear", "apple_fuji.png")] {
        let dir = tmp.path().join("Training").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(repo_root().join("samples").join(photo), dir.join(photo)).unwrap();
    }
    let training = tmp.path().join("Training");
    let out_dir = tmp.path().join("shards");
    let out = fruits()
        .args(["embed", "--format", "shard", "--shard-rows", "2", "--label-from-dir", "--device-id", "lab-1"])
        .arg("--out")
        .arg(&out_dir)
        .arg(&training)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let jsonl = fruits().arg("embed").arg(&training).output().unwrap();
    let records = lines(&jsonl.stdout);

    let files = shard_files(&out_dir);
    assert_eq!(files.len(), 2, "3 rows at 2 rows per shard");
    let mut rows = Vec::new();
    for file in &files {
        assert_eq!(file.parent().unwrap().file_name().unwrap(), "lab-1");
        let shard = fruits_formats::Shard::decode(&std::fs::read(file).unwrap()).unwrap();
        assert_eq!(shard.header().device_id, "lab-1");
        assert_eq!(shard.header().dim, 1280);
        assert_eq!(
            shard.header().model_id.to_string(),
            "8ea74d3deaf2f9ae160cfa355f0ab5cf8191e979242b35af25b04c5fef36eb5d"
        );
        for i in 0..shard.header().rows as usize {
            rows.push((shard.label(i).unwrap().to_owned(), shard.row(i).to_vec()));
        }
    }
    let labels: Vec<&str> = rows.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["Banana", "Pear", "Pear"]);
    for ((_, shard_row), record) in rows.iter().zip(&records) {
        let json_row: Vec<f32> =
            record["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(shard_row, &json_row, "{}", record["path"]);
    }
}

#[test]
fn shard_output_needs_a_directory() {
    let out = fruits().args(["embed", "--format", "shard", "samples/"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out DIR"));
}
