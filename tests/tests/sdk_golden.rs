//! The SDK's golden recognition in Rust, through the exported facade (`fruits-ffi`): the
//! fixture `bindings/tests/prepare.sh` builds for the Kotlin and Python tests (8 views of
//! each real photo, one phone uploading them all, a projection with a head synced), made
//! here through the same library code, and the golden photo recognised as
//! `golden.properties` says. (`bindings/tests/golden.rs` checks embedding and errors; it
//! runs under QEMU on ARM too, where the aggregator this fixture needs is not built.)

use std::collections::HashMap;
use std::path::Path;

use fruits_core::client::ModelSource as CoreModelSource;
use fruits_e2e::repo_root;
use fruits_ffi::{FruitsClient, FruitsConfig, ModelSource};
use fruits_sim::dataset::{self, BuildOptions};
use fruits_sim::emulate::{self, EmulateConfig, Shots};

/// `golden.properties`: `key=value` lines, `#` comments.
fn golden() -> HashMap<String, String> {
    std::fs::read_to_string(repo_root().join("bindings/tests/golden.properties"))
        .expect("golden.properties")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn the_sdk_recognises_the_golden_photo_offline_as_the_other_languages_do() {
    let golden = golden();
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("dataset");
    let options = BuildOptions { views: 8, phone_views: 0, test_percent: 0, ..BuildOptions::default() };
    dataset::build(&repo_root().join("data/tuxpaint/fruit"), &set, &options).unwrap();
    let manifest = repo_root().join(&golden["manifest"]);
    let fixture = dir.path().join("fixture");
    let report = emulate::run(&EmulateConfig {
        dataset: set,
        workdir: fixture.clone(),
        model: CoreModelSource::ManifestPath(manifest.clone()),
        phones: 1,
        photos_before_sync: Shots::All,
        photos_after_sync: Shots::Count(0),
        k: 32,
        batch_rows: 64,
    })
    .unwrap();
    assert_eq!(report.latest_projection, Some(1));

    // A client over a copy of the phone's storage, as the Kotlin and Python tests open it.
    let storage = dir.path().join("phone");
    copy_dir(&fixture.join("phones/phone-00"), &storage);
    let key = hex::decode(std::fs::read_to_string(fixture.join("publisher.key.pub")).unwrap().trim()).unwrap();
    let sdk = FruitsClient::new(FruitsConfig {
        storage_dir: storage.display().to_string(),
        model: ModelSource::ManifestPath { path: manifest.display().to_string() },
        ingest_url: "http://127.0.0.1:9".into(),
        device_id: "phone-00".into(),
        device_secret: b"not-registered".to_vec(),
        projection_public_key: key,
        upload_attempts: 1,
    })
    .unwrap();
    let result = sdk.recognize(std::fs::read(repo_root().join(&golden["photo"])).unwrap()).unwrap();
    assert_eq!(result.label.as_deref(), Some(golden["expected_label"].as_str()), "{result:?}");
    assert!((0.0..=1.0).contains(&result.confidence));
    assert_eq!(result.top[0].label, golden["expected_label"]);
    assert_eq!(sdk.status().projection_version, Some(1));

    // A class the head never saw, taught on the device, as the Kotlin and Python tests do.
    let (label, vegetable) =
        (golden["taught_label"].clone(), std::fs::read(repo_root().join(&golden["taught_photo"])).unwrap());
    assert!(sdk.teach(String::new(), vegetable.clone()).is_err());
    assert_eq!(
        (sdk.teach(label.clone(), vegetable.clone()).unwrap(), sdk.teach(label.clone(), vegetable.clone()).unwrap()),
        (1, 2)
    );
    let taught = sdk.recognize(vegetable.clone()).unwrap();
    assert_eq!((taught.label.as_deref(), taught.taught), (Some(label.as_str()), true), "{taught:?}");
    let pineapple = sdk.recognize(std::fs::read(repo_root().join(&golden["photo"])).unwrap()).unwrap();
    assert_eq!(
        pineapple.label.as_deref(),
        Some(golden["expected_label"].as_str()),
        "the published classes still answer"
    );
    assert!(sdk.forget(label.clone()).unwrap() && !sdk.forget(label.clone()).unwrap());
    assert_ne!(sdk.recognize(vegetable).unwrap().label, Some(label));
}
