//! Uploads survive faults, for real: a phone's queue (mobile-core) flushes through
//! the `aggregator ingest` binary into Garage while ingest is SIGKILLed and
//! restarted, Garage is SIGKILLed and restarted, and the phone itself is "killed"
//! (its queue handle dropped) after an upload the server stored but before the
//! phone recorded it. Every embedding arrives, none is stored twice.

mod garage;
mod ingest_process;

use fruits_aggregator::storage::Storage;
use fruits_aggregator::synth::Synthetic;
use fruits_core::queue::{QueueConfig, UploadQueue};
use fruits_core::uploader::{Backoff, Uploader, UploaderConfig};
use fruits_formats::{Encoding, ModelId, Shard};
use ingest_process::IngestProcess;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

const DIM: u32 = 16;
const ROWS: usize = 240;
const BATCH_ROWS: usize = 20;
const DEVICE: &str = "phone-1";
const SECRET_HEX: &str = "70686f6e652d312d736563726574";

fn model() -> ModelId {
    ModelId::of_bytes(b"fault-model")
}

fn queue(dir: &Path) -> UploadQueue {
    let config = QueueConfig {
        device_id: DEVICE.into(),
        model_id: model(),
        dim: DIM,
        encoding: Encoding::F32,
        max_entries: 10_000,
        batch_rows: BATCH_ROWS,
    };
    UploadQueue::open(dir, config).unwrap()
}

/// Every stored row, as bit patterns, with the number of objects holding them.
fn stored_rows(s3: &dyn Storage) -> (usize, Vec<Vec<u32>>) {
    let keys = s3.list("incoming/").unwrap();
    let mut rows = Vec::new();
    for key in &keys {
        assert!(key.starts_with(&format!("incoming/{DEVICE}/")), "{key}");
        let shard = Shard::decode(&s3.get(key).unwrap()).unwrap();
        rows.extend(shard.values().chunks(DIM as usize).map(|r| r.iter().map(|v| v.to_bits()).collect()));
    }
    (keys.len(), rows)
}

#[test]
fn no_embedding_is_lost_or_stored_twice_through_ingest_and_storage_crashes() {
    let garage = garage::Garage::start();
    let s3 = garage.storage("");
    let tmp = tempfile::tempdir().unwrap();
    let devices = tmp.path().join("devices.json");
    std::fs::write(&devices, format!(r#"{{"devices":[{{"id":"{DEVICE}","secret":"{SECRET_HEX}"}}]}}"#)).unwrap();
    let (model_id, dim) = (model().to_string(), DIM.to_string());
    let args = ["--storage", "s3://fruits/", "--devices", devices.to_str().unwrap(), "--model-id", &model_id];
    let args = [&args[..], &["--dim", &dim, "--rate-per-second", "10", "--rate-burst", "1"]].concat();
    let mut ingest = IngestProcess::new(&args, garage.env.clone());
    let port = ingest.port;
    ingest.start();

    // The phone queues every embedding offline first.
    let phone_dir = tmp.path().join("phone");
    let rows = Synthetic::new(DIM as usize, 5).rows(ROWS, 11);
    let mut q = queue(&phone_dir);
    for row in rows[..rows.len() / 2].chunks(DIM as usize) {
        q.push(row, 1_767_225_600_000).unwrap();
    }
    let uploader = Uploader::new(UploaderConfig {
        server_url: format!("http://127.0.0.1:{port}"),
        device_id: DEVICE.into(),
        secret: hex::decode(SECRET_HEX).unwrap(),
        backoff: Backoff { base: Duration::from_millis(50), max: Duration::from_millis(400), attempts: 200 },
    })
    .unwrap();

    // Killed after the server stored a batch but before the phone acknowledged it:
    // the reopened queue hands out the same batch id, whose retry lands on the same key.
    let first = q.next_batch().unwrap().unwrap();
    uploader.upload(&first).unwrap();
    drop(q);
    let mut q = queue(&phone_dir);
    assert_eq!(q.len(), ROWS / 2, "nothing acknowledged, nothing lost");
    assert_eq!(q.next_batch().unwrap().unwrap(), first);

    // Ingest is SIGKILLed while the phone is flushing (its rate limit of 10
    // batches/s keeps the flush going for over a second), then comes back.
    let uploader = std::sync::Arc::new(uploader);
    let flush = |mut q: UploadQueue| {
        let uploader = uploader.clone();
        std::thread::spawn(move || (uploader.flush(&mut q).unwrap(), q))
    };
    let flusher = flush(q);
    let deadline = Instant::now() + Duration::from_secs(60);
    while s3.list("incoming/").map_or(0, |k| k.len()) < 3 {
        assert!(Instant::now() < deadline, "uploads stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
    ingest.kill();
    std::thread::sleep(Duration::from_millis(300));
    ingest.start();
    let (uploaded, mut q) = flusher.join().unwrap();
    assert_eq!((uploaded, q.len()), (ROWS / 2 / BATCH_ROWS, 0));

    // Garage is SIGKILLed with more embeddings queued: ingest answers 503, the
    // phone backs off and retries until storage is back.
    for row in rows[rows.len() / 2..].chunks(DIM as usize) {
        q.push(row, 1_767_225_600_000).unwrap();
    }
    garage.kill();
    let flusher = flush(q);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!flusher.is_finished(), "nothing can be stored while Garage is down");
    garage.restart();
    let (uploaded, q) = flusher.join().unwrap();
    assert_eq!((uploaded, q.len()), (ROWS / 2 / BATCH_ROWS, 0));

    let (objects, stored) = stored_rows(&s3);
    assert_eq!(objects, ROWS / BATCH_ROWS, "one object per batch");
    assert_eq!(stored.len(), ROWS, "every row stored exactly once");
    let sent: BTreeSet<Vec<u32>> = rows.chunks(DIM as usize).map(|r| r.iter().map(|v| v.to_bits()).collect()).collect();
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), sent, "the very rows queued");
}
