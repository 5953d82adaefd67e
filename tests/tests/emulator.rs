//! `fruits emulate` with 20 phones against the local stack (ingest on loopback,
//! local storage, aggregator run, sync): every phone's embeddings arrive exactly
//! once, with their labels, and every phone ends on the latest projection.

use std::collections::HashMap;

use fruits_aggregator::storage::{LocalDir, Storage};
use fruits_core::client::ModelSource;
use fruits_e2e::{fruits360_tree, repo_root};
use fruits_formats::{Shard, layout};
use fruits_sim::emulate::{self, EmulateConfig, Shots, list_photos, photos_for};

const PHONES: usize = 20;
const BEFORE: usize = 3;
const AFTER: usize = 1;

/// Labels stored under `prefix`, per device, sorted.
fn stored_labels(store: &LocalDir, prefix: &str) -> HashMap<String, Vec<String>> {
    let mut labels: HashMap<String, Vec<String>> = HashMap::new();
    for key in store.list(prefix).unwrap() {
        let shard = Shard::decode(&store.get(&key).unwrap()).unwrap();
        let device = labels.entry(shard.header().device_id.clone()).or_default();
        device
            .extend((0..shard.header().rows as usize).map(|i| shard.label(i).expect("every row labelled").to_owned()));
    }
    labels.values_mut().for_each(|l| l.sort());
    labels
}

#[test]
fn twenty_phones_upload_exactly_once_and_end_on_the_latest_projection() {
    let dir = tempfile::tempdir().unwrap();
    fruits360_tree(&dir.path().join("dataset"));
    let config = EmulateConfig {
        dataset: dir.path().join("dataset"),
        workdir: dir.path().join("work"),
        model: ModelSource::ManifestPath(repo_root().join("models/mobilenetv2-1.0-224-embed.json")),
        phones: PHONES,
        photos_before_sync: Shots::Count(BEFORE),
        photos_after_sync: Shots::Count(AFTER),
        k: 8,
        batch_rows: 2,
    };
    let report = emulate::run(&config).unwrap();
    assert_eq!(report.latest_projection, Some(1));
    assert_eq!(report.phones.len(), PHONES);
    for p in &report.phones {
        assert_eq!((p.photos, p.failed_photos), (BEFORE + AFTER, 0), "{p:?}");
        assert_eq!((p.embeddings_queued, p.embeddings_stored), (BEFORE, BEFORE), "{p:?}");
        assert_eq!((p.codes_queued, p.codes_stored), (AFTER, AFTER), "{p:?}");
        assert_eq!(
            (p.entries_uploaded, p.batches_uploaded),
            (BEFORE + AFTER, 3),
            "2 + 1 batches of embeddings, 1 of codes: {p:?}"
        );
        assert_eq!((p.still_queued, p.projection_version), (0, Some(1)), "{p:?}");
    }

    // Exactly once, row for row: each phone's stored labels are the photos it took.
    let photos = list_photos(&config.dataset).unwrap();
    let store = LocalDir::new(config.workdir.join("store"));
    let embeddings = stored_labels(&store, layout::INCOMING_PREFIX);
    let manifest =
        fruits_core::manifest::ModelManifest::load(&repo_root().join("models/mobilenetv2-1.0-224-embed.json"));
    let model: fruits_formats::ModelId = manifest.unwrap().model_id().parse().unwrap();
    let codes = stored_labels(&store, &layout::codes_prefix(&model, 1));
    for (i, p) in report.phones.iter().enumerate() {
        let taken = |start, count| {
            let mut labels: Vec<String> =
                photos_for(&photos, i, PHONES, start, Shots::Count(count)).iter().map(|p| p.label.clone()).collect();
            labels.sort();
            labels
        };
        assert_eq!(embeddings[&p.device_id], taken(0, BEFORE), "{}", p.device_id);
        assert_eq!(codes[&p.device_id], taken(BEFORE, AFTER), "{}", p.device_id);
    }
    assert!(config.workdir.join("publisher.key.pub").exists());
    assert!(emulate::run(&config).is_err(), "a used working directory is refused");
}
