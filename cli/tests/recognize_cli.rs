//! `fruits recognize` end to end: `fruits dataset build` renders views of the real photos,
//! an emulated phone uploads them, the local cloud publishes a signed projection with a
//! head, and the `fruits` binary answers "what is this fruit?" from the phone's storage and
//! from the published artifact, as a table and as JSON lines, with `fruits embed`'s typed
//! errors for a bad photo.

use std::process::{Command, Output};

mod common;
use common::repo_root;

fn fruits(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fruits"));
    c.current_dir(repo_root()).env_remove("FRUITS_MODEL_DIR").args(args);
    c.output().unwrap()
}

#[test]
fn recognises_from_a_phone_and_from_the_published_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let (set, work) = (tmp.path().join("set"), tmp.path().join("work"));
    let built = fruits(&[
        "dataset",
        "build",
        "--out",
        set.to_str().unwrap(),
        "--views",
        "4",
        "--phone-views",
        "0",
        "--test-percent",
        "0",
    ]);
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let emulated = fruits(&[
        "emulate",
        "--dataset",
        set.to_str().unwrap(),
        "--workdir",
        work.to_str().unwrap(),
        "--phones",
        "1",
        "--photos-before-sync",
        "all",
        "--photos-after-sync",
        "0",
        "--k",
        "16",
    ]);
    assert!(emulated.status.success(), "{}", String::from_utf8_lossy(&emulated.stderr));
    let phone = work.join("phones/phone-00");
    let banana = "data/tuxpaint/fruit/banana.png";

    let json = fruits(&["recognize", "--phone", phone.to_str().unwrap(), "--json", banana]);
    assert!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
    let line: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(line["path"], banana);
    assert_eq!(line["top"][0]["label"], "Banana", "{line}");
    assert_eq!(line["top"].as_array().unwrap().len(), 3);
    let confidence = line["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence));
    if line["label"] == "Banana" {
        assert_eq!(line["info"]["name_fr"], "Banane", "the catalogue entry travels with the answer");
    }

    let table = fruits(&["recognize", "--phone", phone.to_str().unwrap(), banana, "samples/"]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("photo") && text.contains(banana) && text.lines().count() >= 6, "{text}");

    // The emulator's one model's series: models/projection/<model>/.
    let series = std::fs::read_dir(work.join("store/models/projection")).unwrap().next().unwrap().unwrap().path();
    let artifact = series.join("v1.bin");
    let key = work.join("publisher.key.pub");
    let from_artifact = fruits(&[
        "recognize",
        "--artifact",
        artifact.to_str().unwrap(),
        "--public-key",
        key.to_str().unwrap(),
        "--json",
        banana,
    ]);
    assert!(from_artifact.status.success(), "{}", String::from_utf8_lossy(&from_artifact.stderr));
    let same: serde_json::Value = serde_json::from_slice(&from_artifact.stdout).unwrap();
    assert_eq!(same, line, "the same head answers the same");

    let wrong_key =
        fruits(&["recognize", "--artifact", artifact.to_str().unwrap(), "--public-key", &"00".repeat(32), banana]);
    assert!(!wrong_key.status.success(), "a projection signed by another key is refused");

    let corrupt = tmp.path().join("corrupt.jpg");
    std::fs::write(&corrupt, &std::fs::read(repo_root().join("samples/banana.png")).unwrap()[..100]).unwrap();
    let bad = fruits(&["recognize", "--phone", phone.to_str().unwrap(), corrupt.to_str().unwrap(), banana]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("corrupt.jpg") && stderr.contains("[decode") && stderr.contains("1 of 2"), "{stderr}");
}
