//! Phones to phones, for real: devices queue embeddings (mobile-core), upload them
//! signed to the ingest service, which validates and writes them to S3 (Garage);
//! the aggregator runs on S3 and publishes a signed projection; phones sync it
//! through ingest, verify it and project embeddings with it. A second model (an app
//! moved to the int8 MobileNetV2) uploads through the same ingest, is sketched and
//! published apart, and its phones sync their own model's projection.

use fruits_aggregator::ingest::{Ingest, check::Policy};
use fruits_aggregator::pipeline::PublishOptions;
use fruits_aggregator::run::{RunOptions, run};
use fruits_aggregator::storage::Storage;
use fruits_aggregator::synth::Synthetic;
use fruits_core::queue::{QueueConfig, UploadQueue};
use fruits_core::sync::{ModelSync, SyncConfig, SyncError, SyncOutcome};
use fruits_core::uploader::{Backoff, Uploader, UploaderConfig};
use fruits_e2e::{garage, start_ingest};
use fruits_formats::{Encoding, ModelId, layout};
use fruits_pca::eigen::Solver;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DIM: u32 = 32;
const DEVICES: usize = 4;
const ROWS_PER_DEVICE: usize = 300;
const BATCH_ROWS: usize = 50;

#[test]
fn devices_to_ingest_to_garage_to_aggregator_to_sync_to_project() {
    let garage = garage::Garage::start();
    let s3 = Arc::new(garage.storage(""));
    let model = ModelId::of_bytes(b"e2e-model");
    let int8 = ModelId::of_bytes(b"e2e-model-int8");
    let secrets: HashMap<String, Vec<u8>> =
        (0..DEVICES).map(|i| (format!("dev-{i}"), format!("secret-{i}").into_bytes())).collect();
    let policy = Policy {
        max_body: 1 << 20,
        max_rows: 1000,
        rate_per_second: 100.0,
        rate_burst: 100.0,
        ..Policy::new(model, DIM).with_model(int8, DIM)
    };
    let ingest = Ingest::new(s3.clone(), secrets.clone(), policy);
    let url = start_ingest(ingest.clone());
    let device_root = tempfile::tempdir().unwrap();
    let synthetic = Synthetic::new(DIM as usize, 3);

    // Phones: queue embeddings offline, then flush.
    let mut queues = Vec::new();
    for i in 0..DEVICES {
        let config = QueueConfig {
            device_id: format!("dev-{i}"),
            model_id: model,
            dim: DIM,
            encoding: Encoding::F32,
            max_entries: 10_000,
            batch_rows: BATCH_ROWS,
        };
        let mut q = UploadQueue::open(&device_root.path().join(format!("dev-{i}")), config).unwrap();
        for row in synthetic.rows(ROWS_PER_DEVICE, 100 + i as u64).chunks(DIM as usize) {
            q.push(row, 1_767_225_600_000).unwrap();
        }
        queues.push(q);
    }
    let uploaders: Vec<Uploader> = (0..DEVICES)
        .map(|i| {
            Uploader::new(UploaderConfig {
                server_url: url.clone(),
                device_id: format!("dev-{i}"),
                secret: secrets[&format!("dev-{i}")].clone(),
                backoff: Backoff { base: Duration::from_millis(20), max: Duration::from_millis(200), attempts: 5 },
            })
            .unwrap()
        })
        .collect();
    let first_batch = queues[0].next_batch().unwrap().unwrap();
    let start = Instant::now();
    let uploaded: usize = uploaders.iter().zip(&mut queues).map(|(u, q)| u.flush(q).unwrap()).sum();
    let elapsed = start.elapsed().as_secs_f64();
    let batches = DEVICES * ROWS_PER_DEVICE / BATCH_ROWS;
    assert_eq!(uploaded, batches);
    assert!(queues.iter().all(|q| q.is_empty()));
    println!(
        "ingest throughput (sequential, 1 client, Garage on loopback): {:.0} batches/s, {:.0} rows/s",
        batches as f64 / elapsed,
        (DEVICES * ROWS_PER_DEVICE) as f64 / elapsed
    );
    // A retry of an acknowledged batch (same batch id, same bytes) is stored once.
    uploaders[0].upload(&first_batch).unwrap();
    let keys = s3.list(layout::INCOMING_PREFIX).unwrap();
    assert_eq!(keys.len(), batches, "one object per batch: {keys:?}");
    assert!(keys.iter().all(|k| k.starts_with(&format!("{}dev-", layout::INCOMING_PREFIX))));

    // Cloud: aggregate on S3 and publish a signed projection.
    let signing = fruits_aggregator::signing::keygen(&device_root.path().join("publisher.key")).unwrap();
    let opts = RunOptions {
        input_prefix: layout::INCOMING_PREFIX.into(),
        model_id: Some(model),
        run_id: "e2e".into(),
        publish: PublishOptions {
            k: 4,
            solver: Solver::Randomized { seed: 0 },
            head: None,
            signing_key: Some(signing.clone()),
            created_unix_ms: 1,
        },
    };
    let report = run(&*s3, &*s3, &opts, &indicatif::ProgressBar::hidden()).unwrap();
    assert_eq!(report.rows, (DEVICES * ROWS_PER_DEVICE) as u64);

    // Phones: sync through ingest, verify, project.
    let config = SyncConfig {
        server_url: url.clone(),
        public_key: signing.verifying_key().to_bytes(),
        model_id: model,
        dir: device_root.path().join("dev-0"),
    };
    let sync = ModelSync::new(config.clone()).unwrap();
    assert_eq!(sync.sync_model().unwrap(), SyncOutcome::Updated { version: 1, previous: None });
    assert_eq!(sync.sync_model().unwrap(), SyncOutcome::Unchanged { version: Some(1) });
    let projector = sync.current().unwrap().unwrap();
    let embedding = synthetic.rows(1, 999);
    let codes = projector.project(&embedding).unwrap();
    assert_eq!(codes.len(), 4);
    let published =
        fruits_formats::ProjectionArtifact::decode(&s3.get(&layout::projection_key(&model, 1)).unwrap()).unwrap();
    assert_eq!(Some(codes), published.project(&embedding));

    // Phones now upload k-wide f16 codes tagged with the projection version, from a
    // queue of their own; they land apart from the embeddings the PCA reads.
    let codes_config = QueueConfig {
        device_id: "dev-0".into(),
        model_id: model,
        dim: projector.0.k,
        encoding: Encoding::ProjectedF16 { projection_version: projector.version() },
        max_entries: 1_000,
        batch_rows: BATCH_ROWS,
    };
    let mut codes_queue = UploadQueue::open(&device_root.path().join("dev-0/codes-v1"), codes_config).unwrap();
    for row in synthetic.rows(BATCH_ROWS * 2, 1234).chunks(DIM as usize) {
        codes_queue.push(&projector.project(row).unwrap(), 1_767_225_600_000).unwrap();
    }
    let code_batch_bytes = codes_queue.next_batch().unwrap().unwrap().shard.len();
    assert_eq!(uploaders[0].flush(&mut codes_queue).unwrap(), 2);
    let code_keys = s3.list(layout::CODES_PREFIX).unwrap();
    assert_eq!(code_keys.len(), 2);
    assert!(
        code_keys.iter().all(|k| k.starts_with(&format!("{}dev-0/", layout::codes_prefix(&model, 1)))),
        "{code_keys:?}"
    );
    assert_eq!(s3.list(layout::INCOMING_PREFIX).unwrap().len(), batches, "codes never mix with embeddings");
    let embedding_batch_bytes = s3.get(&keys[0]).unwrap().len();
    assert!(code_batch_bytes * 4 < embedding_batch_bytes, "{code_batch_bytes} vs {embedding_batch_bytes} bytes");

    // A device of a model the deployment does not take finds nothing published for it, as
    // does a device of the second model before its first publication; a wrong public key
    // is refused.
    let sync_of = |model_id, dir: &str| {
        ModelSync::new(SyncConfig { model_id, dir: device_root.path().join(dir), ..config.clone() }).unwrap()
    };
    assert!(matches!(sync_of(ModelId::of_bytes(b"x"), "o").sync_model(), Err(SyncError::NothingPublished(_))));
    let int8_sync = sync_of(int8, "dev-3");
    assert!(matches!(int8_sync.sync_model(), Err(SyncError::NothingPublished(_))));
    let forged =
        ModelSync::new(SyncConfig { public_key: [9; 32], dir: device_root.path().join("f"), ..config.clone() })
            .unwrap();
    assert!(matches!(forged.sync_model(), Err(SyncError::Verify(_))));

    // The fleet moves: dev-3's app now embeds with the int8 model (a queue of its own) and
    // uploads through the same ingest; the embeddings share incoming/ but never a PCA.
    let int8_config = QueueConfig {
        device_id: "dev-3".into(),
        model_id: int8,
        dim: DIM,
        encoding: Encoding::F32,
        max_entries: 10_000,
        batch_rows: BATCH_ROWS,
    };
    let mut int8_queue = UploadQueue::open(&device_root.path().join("dev-3-int8"), int8_config).unwrap();
    for row in synthetic.rows(ROWS_PER_DEVICE, 7).chunks(DIM as usize) {
        int8_queue.push(row, 1_767_225_600_000).unwrap();
    }
    assert_eq!(uploaders[3].flush(&mut int8_queue).unwrap(), ROWS_PER_DEVICE / BATCH_ROWS);
    assert_eq!(s3.list(layout::INCOMING_PREFIX).unwrap().len(), batches + ROWS_PER_DEVICE / BATCH_ROWS);

    // The aggregator publishes v2 (another solver seed: new inputs, where the same ones
    // would publish nothing); a tampered, then a truncated copy of it on the server is
    // refused and v1 stays installed and in use.
    let publish = PublishOptions { solver: Solver::Randomized { seed: 1 }, ..opts.publish.clone() };
    let second = RunOptions { run_id: "e2e-2".into(), publish, ..opts };
    let report = run(&*s3, &*s3, &second, &indicatif::ProgressBar::hidden()).unwrap();
    assert_eq!(report.rows, (DEVICES * ROWS_PER_DEVICE) as u64);
    let v2 = s3.get(&layout::projection_key(&model, 2)).unwrap();
    let mut tampered = v2.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x40;
    for bad in [tampered, v2[..v2.len() - 7].to_vec()] {
        s3.put(&layout::projection_key(&model, 2), &bad).unwrap();
        assert!(matches!(sync.sync_model(), Err(SyncError::Verify(_))));
        assert_eq!(fruits_core::sync::installed_version(&config.dir, &model).unwrap(), Some(1));
        assert_eq!(sync.current().unwrap().unwrap().version(), 1);
    }
    s3.put(&layout::projection_key(&model, 2), &v2).unwrap();
    assert_eq!(sync.sync_model().unwrap(), SyncOutcome::Updated { version: 2, previous: Some(1) });
    assert_eq!(sync.current().unwrap().unwrap().version(), 2);
    assert!(config.dir.join(format!("projection/{model}/v1.bin")).exists(), "the previous version is kept");

    // The int8 model's run sketches its rows alone and starts its own series at v1; its
    // phones sync it, and the first model's series is untouched.
    let int8_run = RunOptions { run_id: "e2e-int8".into(), model_id: Some(int8), ..second };
    let report = run(&*s3, &*s3, &int8_run, &indicatif::ProgressBar::hidden()).unwrap();
    assert_eq!(report.rows, ROWS_PER_DEVICE as u64, "the int8 rows only");
    assert_eq!(int8_sync.sync_model().unwrap(), SyncOutcome::Updated { version: 1, previous: None });
    assert_eq!(int8_sync.current().unwrap().unwrap().0.model_id, int8);
    assert_eq!(sync.sync_model().unwrap(), SyncOutcome::Unchanged { version: Some(2) });
    assert_eq!(sync.current().unwrap().unwrap().0.model_id, model);
    // A manifest of the first model misfiled in the int8 series is refused by int8 phones.
    s3.put(&layout::latest_key(&int8), &s3.get(&layout::latest_key(&model)).unwrap()).unwrap();
    assert!(matches!(sync_of(int8, "misfiled").sync_model(), Err(SyncError::WrongModel { .. })));
}
