//! Issue-4 benchmark: what a phone sends, and how fast ingest takes it.
//!
//! 1. Bytes per photo on the real fruit photos: the original design's upload of the
//!    photo itself (re-encoded as JPEG, quality 90, at its own size: the anchor) vs a
//!    full f32 embedding, an f16 embedding, and projected f16 codes at several k,
//!    each as its share of a real encoded shard of `ROWS_PER_SHARD` rows.
//! 2. Ingest on loopback: `DEVICES` emulated phones in parallel, each PUTting
//!    signed 1280-d shards through ingest into Garage; per-batch latency (p50, p99)
//!    and embeddings/s, side by side with the anchor of the same shard bytes PUT
//!    straight into Garage by the same number of threads; S3 PUTs per 10,000
//!    embeddings counted from the objects stored.
//!
//! Run: `cargo bench -p fruits-e2e --bench upload` (prints a JSON report).

use fruits_aggregator::ingest::{Ingest, check::Policy};
use fruits_aggregator::storage::Storage;
use fruits_core::queue::Batch;
use fruits_core::uploader::{Backoff, Uploader, UploaderConfig};
use fruits_core::{Embedder, EmbedderOptions};
use fruits_e2e::{garage, repo_root, start_ingest};
use fruits_formats::{Encoding, ModelId, Shard, ShardHeader};
use image::ImageEncoder;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS_PER_SHARD: u32 = 64;
const DEVICES: usize = 8;
const BATCHES_PER_DEVICE: usize = 25;
const DIM: u32 = 1280;

fn shard(model: ModelId, device: &str, batch: &str, dim: u32, encoding: Encoding, values: Vec<f32>) -> Vec<u8> {
    let header = ShardHeader {
        model_id: model,
        dim,
        rows: (values.len() / dim as usize) as u32,
        encoding,
        device_id: device.into(),
        batch_id: batch.into(),
        created_unix_ms: 1_767_225_600_000,
        label_vocabulary: Vec::new(),
    };
    Shard::new(header, values, None).expect("valid shard").encode().expect("encodable shard")
}

/// Mean JPEG bytes of the real photos, and their mean embedding-shard bytes per row.
fn bytes_per_photo() -> serde_json::Value {
    let root = repo_root();
    let embedder =
        Embedder::from_manifest_path(&root.join("models/mobilenetv2-1.0-224-embed.json"), EmbedderOptions::default())
            .expect("model loads");
    let mut photos: Vec<_> = std::fs::read_dir(root.join("data/tuxpaint/fruit"))
        .expect("run scripts/fetch-photos.sh")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    photos.sort();
    let (mut jpeg_total, mut embeddings) = (0usize, Vec::new());
    for path in &photos {
        let bytes = std::fs::read(path).expect("photo");
        let rgb = image::load_from_memory(&bytes).expect("decodes").to_rgb8();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .write_image(rgb.as_raw(), rgb.width(), rgb.height(), image::ExtendedColorType::Rgb8)
            .expect("jpeg");
        jpeg_total += jpeg.len();
        embeddings.push(embedder.embed(&bytes).expect("embeds"));
    }
    let jpeg_mean = jpeg_total as f64 / photos.len() as f64;
    let model = ModelId::of_bytes(b"bytes-per-photo");
    // A full shard of real rows (cycled), so the header is amortised as in production.
    let rows: Vec<&Vec<f32>> = embeddings.iter().cycle().take(ROWS_PER_SHARD as usize).collect();
    let per_row = |dim: u32, encoding: Encoding, take: usize| {
        let values: Vec<f32> = rows.iter().flat_map(|r| r[..take].iter().copied()).collect();
        shard(model, "phone", "b", dim, encoding, values).len() as f64 / f64::from(ROWS_PER_SHARD)
    };
    let mut modes = vec![
        ("embedding f32".to_owned(), per_row(DIM, Encoding::F32, DIM as usize)),
        ("embedding f16".to_owned(), per_row(DIM, Encoding::F16, DIM as usize)),
    ];
    for k in [10u32, 25, 50, 100] {
        let codes = Encoding::ProjectedF16 { projection_version: 1 };
        modes.push((format!("codes f16, k = {k}"), per_row(k, codes, k as usize)));
    }
    let table: Vec<_> = modes
        .iter()
        .map(|(mode, bytes)| serde_json::json!({"mode": mode, "bytes_per_photo": bytes, "ratio_to_jpeg": bytes / jpeg_mean}))
        .collect();
    serde_json::json!({"photos": photos.len(), "jpeg_q90_mean_bytes": jpeg_mean, "rows_per_shard": ROWS_PER_SHARD, "modes": table})
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
}

/// Runs `DEVICES` threads doing `BATCHES_PER_DEVICE` calls of `put` each.
fn parallel(put: impl Fn(usize, usize) + Sync) -> serde_json::Value {
    let start = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..DEVICES)
            .map(|d| {
                let put = &put;
                s.spawn(move || {
                    (0..BATCHES_PER_DEVICE)
                        .map(|b| {
                            let t = Instant::now();
                            put(d, b);
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("device thread")).collect()
    });
    let wall = start.elapsed().as_secs_f64();
    latencies.sort();
    let embeddings = (DEVICES * BATCHES_PER_DEVICE) as f64 * f64::from(ROWS_PER_SHARD);
    serde_json::json!({
        "embeddings_per_s": embeddings / wall,
        "batch_p50_ms": percentile(&latencies, 0.5),
        "batch_p99_ms": percentile(&latencies, 0.99),
        "wall_s": wall,
    })
}

fn ingest_throughput() -> serde_json::Value {
    let garage = garage::Garage::start();
    let s3: Arc<dyn Storage + Send> = Arc::new(garage.storage(""));
    let model = ModelId::of_bytes(b"throughput");
    let secrets: HashMap<String, Vec<u8>> =
        (0..DEVICES).map(|d| (format!("dev-{d}"), format!("s-{d}").into_bytes())).collect();
    let policy = Policy {
        max_body: 4 << 20,
        max_rows: ROWS_PER_SHARD,
        rate_per_second: 1e6,
        rate_burst: 1e6,
        ..Policy::new(model, DIM)
    };
    let url = start_ingest(Ingest::new(s3.clone(), secrets.clone(), policy));
    let values: Vec<f32> = (0..ROWS_PER_SHARD * DIM).map(|i| (i % 97) as f32 / 97.0).collect();
    let shards: Vec<Vec<Vec<u8>>> = (0..DEVICES)
        .map(|d| {
            (0..BATCHES_PER_DEVICE)
                .map(|b| shard(model, &format!("dev-{d}"), &format!("b{b}"), DIM, Encoding::F32, values.clone()))
                .collect()
        })
        .collect();
    let uploaders: Vec<Uploader> = (0..DEVICES)
        .map(|d| {
            Uploader::new(UploaderConfig {
                server_url: url.clone(),
                device_id: format!("dev-{d}"),
                secret: secrets[&format!("dev-{d}")].clone(),
                backoff: Backoff::default(),
            })
            .expect("client")
        })
        .collect();
    // Interleave: anchor, ours, anchor, ours; keep the better of each.
    let mut runs = Vec::new();
    for round in 0..2 {
        let direct =
            parallel(|d, b| s3.put(&format!("direct/{round}/dev-{d}/b{b}.shard"), &shards[d][b]).expect("put"));
        let through_ingest = parallel(|d, b| {
            let batch = Batch { batch_id: format!("b{b}"), rows: ROWS_PER_SHARD as usize, shard: shards[d][b].clone() };
            uploaders[d].upload(&batch).expect("stored");
        });
        runs.push((direct, through_ingest));
    }
    let best = |pick: fn(&(serde_json::Value, serde_json::Value)) -> &serde_json::Value| {
        runs.iter()
            .map(pick)
            .max_by(|a, b| a["embeddings_per_s"].as_f64().partial_cmp(&b["embeddings_per_s"].as_f64()).unwrap())
            .cloned()
    };
    let (direct, ours) = (best(|r| &r.0).expect("runs"), best(|r| &r.1).expect("runs"));
    let objects = s3.list(fruits_formats::layout::INCOMING_PREFIX).expect("list").len();
    let embeddings = DEVICES * BATCHES_PER_DEVICE * ROWS_PER_SHARD as usize;
    serde_json::json!({
        "devices": DEVICES,
        "batches": DEVICES * BATCHES_PER_DEVICE,
        "rows_per_batch": ROWS_PER_SHARD,
        "through_ingest": ours,
        "direct_s3_put_anchor": direct,
        "ingest_vs_direct_throughput": ours["embeddings_per_s"].as_f64().unwrap() / direct["embeddings_per_s"].as_f64().unwrap(),
        "objects_stored_after_two_rounds": objects,
        "s3_puts_per_10k_embeddings": objects as f64 / embeddings as f64 * 10_000.0,
    })
}

fn main() {
    // `cargo test --all-targets` runs bench targets without `--bench`: nothing to time then.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("upload: a benchmark; run it with `cargo bench -p fruits-e2e --bench upload`");
        return;
    }
    let report = serde_json::json!({
        "bytes_per_photo": bytes_per_photo(),
        "ingest": ingest_throughput(),
    });
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
}
