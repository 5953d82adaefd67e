//! The fault and load suite of `aggregator ingest` (loopback only, local storage, about
//! half a minute): many phones upload concurrently with retries while ingest is SIGKILLed
//! at seeded random points and restarted; meanwhile hostile clients hold idle connections,
//! trickle headers, send unsigned 8 MiB bodies, a `Content-Length` of 10^12 and an endless
//! signed body, and a captured request is replayed after a restart. At the end every
//! acknowledged batch is stored exactly once and decodes, every row arrived, and the
//! server's RSS stayed under a stated bound during the hostile burst and fell back after.
//! Its figures (uploads/s, p50/p99, RSS) are printed as one JSON line for `BENCHMARKS.md`.

mod ingest_process;

use fruits_core::queue::{QueueConfig, UploadQueue};
use fruits_core::uploader::{Backoff, Uploader, UploaderConfig};
use fruits_formats::request_auth::{self, H_CONTENT_SHA256, H_DEVICE, H_NONCE, H_SIGNATURE, H_TIMESTAMP};
use fruits_formats::{Encoding, ModelId, Shard, ShardHeader};
use ingest_process::IngestProcess;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DIM: u32 = 16;
const DEVICES: usize = 8;
const ROWS_PER_DEVICE: usize = 60;
const BATCH_ROWS: usize = 4;
const KILLS: usize = 3;
/// The server's resident memory must stay under this during the hostile burst: 150
/// unsigned 8 MiB bodies would be 1.2 GB if buffered; refused from their headers, each
/// connection holds at most its 64 KiB read buffer.
const RSS_BOUND_DURING: u64 = 96 << 20;
/// And 3 s after it (freed memory is trimmed once a second), under this.
const RSS_BOUND_AFTER: u64 = 64 << 20;

fn model() -> ModelId {
    ModelId::of_bytes(b"load-model")
}

fn secret(device: usize) -> Vec<u8> {
    format!("secret-of-{device}").into_bytes()
}

/// A row unique to (device, index), so that duplicates and losses are visible.
fn row(device: usize, i: usize) -> Vec<f32> {
    (0..DIM).map(|c| (device * 10_000 + i) as f32 + c as f32 / 100.0).collect()
}

fn queue(dir: &Path, device: usize) -> UploadQueue {
    let config = QueueConfig {
        device_id: format!("dev-{device}"),
        model_id: model(),
        dim: DIM,
        encoding: Encoding::F32,
        max_entries: 10_000,
        batch_rows: BATCH_ROWS,
    };
    UploadQueue::open(&dir.join(format!("dev-{device}")), config).unwrap()
}

/// One signed PUT, raw, as a captured request is: its bytes can be sent again.
fn signed_request(device: usize, batch: &str, body: &[u8]) -> Vec<u8> {
    let path = fruits_formats::layout::batch_path(batch);
    let ts = fruits_aggregator::clock::now_unix_ms();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nonce = format!("raw-{ts}-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
    let hash = request_auth::body_hash(body);
    let signature = request_auth::sign_hashed(&secret(device), "PUT", &path, &hash, ts, &nonce);
    let mut request = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\n{H_DEVICE}: dev-{device}\r\n{H_TIMESTAMP}: {ts}\r\n{H_NONCE}: {nonce}\r\n\
         {H_CONTENT_SHA256}: {hash}\r\n{H_SIGNATURE}: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Sends raw bytes and reads the status code of the answer (0 if none came).
fn send_raw(port: u16, bytes: &[u8]) -> u16 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return 0 };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Whether the server closed `s` (or answered and closed) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn every_acknowledged_batch_is_stored_once_through_kills_and_hostile_load_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let devices = tmp.path().join("devices.json");
    let entries: Vec<String> =
        (0..DEVICES).map(|d| format!(r#"{{"id":"dev-{d}","secret":"{}"}}"#, hex::encode(secret(d)))).collect();
    std::fs::write(&devices, format!(r#"{{"devices":[{}]}}"#, entries.join(","))).unwrap();
    let storage = tmp.path().join("store");
    let (model_id, dim, max_body) = (model().to_string(), DIM.to_string(), (1 << 20).to_string());
    let args = [
        &["--storage", storage.to_str().unwrap(), "--devices", devices.to_str().unwrap()][..],
        &["--model-id", &model_id, "--dim", &dim, "--max-body", &max_body],
        &["--rate-per-second", "1000", "--rate-burst", "1000", "--max-connections", "64"],
        &["--header-timeout-secs", "1", "--body-timeout-secs", "2"],
    ]
    .concat();
    let ingest = IngestProcess::new(&args, Default::default());
    let port = ingest.port;
    let ingest = Arc::new(Mutex::new(ingest));
    ingest.lock().unwrap().start();

    // Phones: every embedding queued offline, then flushed concurrently, retrying through
    // the kills below (a flush that gives up is started again, as the app would).
    let phones = tmp.path().join("phones");
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let started = Instant::now();
    let flushers: Vec<_> = (0..DEVICES)
        .map(|d| {
            let (phones, latencies) = (phones.clone(), latencies.clone());
            std::thread::spawn(move || {
                let mut q = queue(&phones, d);
                (0..ROWS_PER_DEVICE).for_each(|i| q.push(&row(d, i), 1_767_225_600_000).unwrap());
                let uploader = Uploader::new(UploaderConfig {
                    server_url: format!("http://127.0.0.1:{port}"),
                    device_id: format!("dev-{d}"),
                    secret: secret(d),
                    backoff: Backoff { base: Duration::from_millis(20), max: Duration::from_millis(300), attempts: 40 },
                })
                .unwrap();
                while let Some(batch) = q.next_batch().unwrap() {
                    let t = Instant::now();
                    match uploader.upload(&batch) {
                        Ok(()) => {
                            latencies.lock().unwrap().push(t.elapsed().as_secs_f64() * 1e3);
                            q.ack(&batch).unwrap();
                        }
                        Err(e) => panic!("dev-{d}: {e}"),
                    }
                    // A phone uploads a batch now and then, not in a tight loop.
                    std::thread::sleep(Duration::from_millis(25));
                }
            })
        })
        .collect();

    // SIGKILL ingest at seeded random points while the phones upload.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(rng.random_range(150..600)));
        let mut ingest = ingest.lock().unwrap();
        ingest.kill();
        std::thread::sleep(Duration::from_millis(rng.random_range(20..200)));
        ingest.start();
    }

    // A captured request, accepted once, then replayed after a restart.
    let body = {
        let header = ShardHeader {
            model_id: model(),
            dim: DIM,
            rows: 1,
            encoding: Encoding::F32,
            device_id: "dev-0".into(),
            batch_id: "captured".into(),
            created_unix_ms: 0,
            label_vocabulary: Vec::new(),
        };
        Shard::new(header, row(0, 9_999), None).unwrap().encode().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let captured = loop {
        // Signed anew until accepted (a just-restarted ingest answers 503 for a second).
        let request = signed_request(0, "captured", &body);
        match send_raw(port, &request) {
            201 => break request,
            status => assert!(Instant::now() < deadline, "never accepted: {status}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    {
        let mut ingest = ingest.lock().unwrap();
        ingest.kill();
        ingest.start();
    }
    assert_eq!(send_raw(port, &captured), 503, "a request captured before a restart is refused after it");
    // Past the restarted process's horizon (start + 1 s), fresh signatures are accepted.
    std::thread::sleep(Duration::from_millis(1100));

    // The hostile burst, with the phones still uploading.
    let rss_before = ingest.lock().unwrap().rss();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss_before));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (ingest, peak, watching) = (ingest.clone(), peak.clone(), watching.clone());
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                let rss = ingest.lock().unwrap().rss();
                peak.fetch_max(rss, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // 40 idle connections and 10 trickling their headers, closed by the 1 s header timeout.
    let mut idle: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    let mut trickling: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    trickling.iter_mut().for_each(|s| s.write_all(b"PUT /v1/batches/x HTTP/1.1\r\nHost: x\r\n").unwrap());
    // 150 unsigned 8 MiB bodies at once, over the cap of 64 connections: refused from their
    // headers (401), or at the cap (503), never buffered.
    let unsigned: Vec<_> = (0..150)
        .map(|_| {
            std::thread::spawn(move || {
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return 0 };
                let head = "PUT /v1/batches/b HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n";
                let _ = s.write_all(head.as_bytes());
                // The server answers and closes before the body is sent: writes fail.
                let chunk = vec![0x5au8; 1 << 20];
                for _ in 0..8 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                }
                let mut answer = Vec::new();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = s.read_to_end(&mut answer);
                String::from_utf8_lossy(&answer).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
            })
        })
        .collect();
    let codes: Vec<u16> = unsigned.into_iter().map(|t| t.join().unwrap()).collect();
    let count = |code| codes.iter().filter(|&&c| c == code).count();
    assert_eq!(count(401) + count(503) + count(0), codes.len(), "{codes:?}");
    assert!(count(401) > 0 && count(503) > 0, "refused as unsigned, and at the cap: {codes:?}");
    assert!(idle.iter_mut().all(|s| closed_within(s, Duration::from_secs(4))), "idle connections are closed");
    assert!(trickling.iter_mut().all(|s| closed_within(s, Duration::from_secs(4))), "slow headers are cut");
    // Once the cap has room again: a signed request claiming 10^12 bytes, and one whose
    // body never ends.
    let huge = signed_request(1, "huge", b"");
    let huge = String::from_utf8(huge).unwrap().replace("Content-Length: 0", "Content-Length: 1000000000000");
    assert_eq!(send_raw(port, huge.as_bytes()), 413, "a 10^12-byte body is refused from its length");
    let mut endless = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = String::from_utf8(signed_request(1, "endless", b"")).unwrap();
    let head = head.replace("Content-Length: 0", "Transfer-Encoding: chunked");
    endless.write_all(head.as_bytes()).unwrap();
    endless.write_all(b"10\r\n0123456789abcdef\r\n").unwrap();
    let mut answer = Vec::new();
    endless.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    let _ = endless.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "an endless body is cut at the body timeout: {answer}");
    assert!(t.elapsed() < Duration::from_secs(5));

    // 32 authenticated bodies of 1 MiB at once (garbage with its right hash): read, then
    // refused as malformed; their memory is returned after.
    let large: Vec<_> = (0..32)
        .map(|i| {
            std::thread::spawn(move || {
                let garbage: Vec<u8> = (0..1usize << 20).map(|j| (j * 31 + i) as u8).collect();
                send_raw(port, &signed_request(2, &format!("large-{i}"), &garbage))
            })
        })
        .collect();
    let large: Vec<u16> = large.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(large.iter().all(|&c| c == 422 || c == 503), "{large:?}");
    let peak_during = peak.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(3));
    watching.store(false, Ordering::Relaxed);
    watcher.join().unwrap();
    let rss_after = ingest.lock().unwrap().rss();

    for f in flushers {
        f.join().unwrap();
    }
    let wall = started.elapsed().as_secs_f64();

    // Every batch stored once, every row exactly once.
    let keys: Vec<PathBuf> = walk(&storage.join("incoming"));
    let mut rows = BTreeSet::new();
    let mut stored_rows = 0;
    for key in &keys {
        let shard = Shard::decode(&std::fs::read(key).unwrap()).unwrap();
        if shard.header().batch_id == "captured" {
            continue;
        }
        for r in shard.values().chunks(DIM as usize) {
            rows.insert(r.iter().map(|v| v.to_bits()).collect::<Vec<u32>>());
            stored_rows += 1;
        }
    }
    let expected_batches = DEVICES * ROWS_PER_DEVICE / BATCH_ROWS;
    assert_eq!(keys.len(), expected_batches + 1, "one object per batch (and the captured one)");
    assert_eq!((stored_rows, rows.len()), (DEVICES * ROWS_PER_DEVICE, DEVICES * ROWS_PER_DEVICE), "exactly once");
    let sent: BTreeSet<Vec<u32>> = (0..DEVICES)
        .flat_map(|d| (0..ROWS_PER_DEVICE).map(move |i| row(d, i).iter().map(|v| v.to_bits()).collect()))
        .collect();
    assert_eq!(rows, sent, "the very rows queued");
    assert!(peak_during < RSS_BOUND_DURING, "RSS {peak_during} during the hostile burst");
    assert!(rss_after < RSS_BOUND_AFTER, "RSS {rss_after} after, {rss_before} before, {peak_during} at the peak");

    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "devices": DEVICES,
            "batches": expected_batches,
            "objects_expected": expected_batches + 1,
            "objects_stored": keys.len(),
            "kills": KILLS + 1,
            "wall_s": wall,
            "uploads_per_s": expected_batches as f64 / wall,
            "batch_p50_ms": percentile(&l, 0.5),
            "batch_p99_ms": percentile(&l, 0.99),
            "rss_before_mib": rss_before as f64 / 1048576.0,
            "rss_peak_during_mib": peak_during as f64 / 1048576.0,
            "rss_after_mib": rss_after as f64 / 1048576.0,
            "unsigned_8mib_bodies": codes.len(),
            "answered_401": count(401),
            "answered_503_at_cap": count(503),
            "authenticated_1mib_bodies_422": large.iter().filter(|&&c| c == 422).count(),
        })
    );
}

/// Every file under `dir`, recursively (hidden temporary files excluded).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if !e.file_name().to_string_lossy().starts_with('.') {
            out.push(path);
        }
    }
    out.sort();
    out
}
