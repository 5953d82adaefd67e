//! The ingest service's HTTP contract, in process (tower `oneshot`, no sockets):
//! every refusal has its own code and stores nothing; retries are stored once;
//! projections are served with ETags.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fruits_aggregator::ingest::Ingest;
use fruits_aggregator::ingest::auth::{self, H_CONTENT_SHA256, H_DEVICE, H_NONCE, H_SIGNATURE, H_TIMESTAMP};
use fruits_aggregator::ingest::check::Policy;
use fruits_aggregator::storage::{LocalDir, Storage};
use fruits_formats::{Encoding, ModelId, Shard, ShardHeader, layout};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tower::ServiceExt;

const DIM: u32 = 8;
const SECRET: &[u8] = b"device-secret";
static NONCE: AtomicU64 = AtomicU64::new(0);

fn model() -> ModelId {
    ModelId::of_bytes(b"model")
}

fn shard(device: &str, batch: &str, model: ModelId, rows: u32, poison: bool) -> Vec<u8> {
    let header = ShardHeader {
        model_id: model,
        dim: DIM,
        rows,
        encoding: Encoding::F32,
        device_id: device.into(),
        batch_id: batch.into(),
        created_unix_ms: 1_767_225_600_000,
        label_vocabulary: Vec::new(),
    };
    let values: Vec<f32> = (0..rows * DIM).map(|i| i as f32 * 0.5).collect();
    let mut bytes = Shard::new(header, values, None).unwrap().encode().unwrap();
    if poison {
        // Replace the first value with NaN and reseal the frame's checksum.
        let mut frame =
            fruits_formats::codec::open_frame(&fruits_formats::shard::SHARD_FRAME, &bytes).unwrap().to_vec();
        let header_len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        frame[4 + header_len..8 + header_len].copy_from_slice(&f32::NAN.to_le_bytes());
        bytes = fruits_formats::codec::seal_frame(&fruits_formats::shard::SHARD_FRAME, &frame);
    }
    bytes
}

fn policy() -> Policy {
    Policy {
        max_body: 64 * 1024,
        max_rows: 1000,
        window_ms: 60_000,
        // No horizon: these services are started and used at once.
        future_ms: 0,
        rate_per_second: 1000.0,
        rate_burst: 1000.0,
        ..Policy::new(model(), DIM)
    }
}

fn service(dir: &std::path::Path, policy: Policy) -> Arc<Ingest> {
    let devices = HashMap::from([("dev-a".to_owned(), SECRET.to_vec()), ("dev-b".to_owned(), b"other".to_vec())]);
    Ingest::new(Arc::new(LocalDir::new(dir)), devices, policy)
}

fn now() -> u64 {
    fruits_aggregator::clock::now_unix_ms()
}

struct Req {
    device: &'static str,
    secret: &'static [u8],
    batch: String,
    body: Vec<u8>,
    ts: u64,
    nonce: String,
    sign_body: Option<Vec<u8>>,
    signed: bool,
    /// Sends the body's hash in its header, as clients since the header-first check do.
    hash_header: bool,
}

fn req(batch: &str, body: Vec<u8>) -> Req {
    Req {
        device: "dev-a",
        secret: SECRET,
        batch: batch.into(),
        body,
        ts: now(),
        nonce: format!("n{}", NONCE.fetch_add(1, Ordering::Relaxed)),
        sign_body: None,
        signed: true,
        hash_header: true,
    }
}

/// The request line and headers of `r`.
fn head(r: &Req) -> axum::http::request::Builder {
    let path = format!("/v1/batches/{}", r.batch);
    let mut b = Request::put(&path);
    if r.signed {
        // The hash the client claims and signs: of another body than the one sent, when
        // `sign_body` says so.
        let hash = auth::body_hash(r.sign_body.as_deref().unwrap_or(&r.body));
        let sig = auth::sign_hashed(r.secret, "PUT", &path, &hash, r.ts, &r.nonce);
        b = b
            .header(H_DEVICE, r.device)
            .header(H_TIMESTAMP, r.ts.to_string())
            .header(H_NONCE, &r.nonce)
            .header(H_SIGNATURE, sig);
        if r.hash_header {
            b = b.header(H_CONTENT_SHA256, hash);
        }
    }
    b
}

async fn send(ingest: &Arc<Ingest>, r: Req) -> (StatusCode, String) {
    let b = head(&r);
    let response = ingest.router().oneshot(b.body(Body::from(r.body)).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .map(|v| v["error"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn each_refusal_has_its_own_code_and_nothing_reaches_storage() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = service(dir.path(), Policy { max_body: 4096, ..policy() });
    let good = || shard("dev-a", "b1", model(), 2, false);
    let replayed = req("b1", good());
    let replay_copy = Req { nonce: replayed.nonce.clone(), ts: replayed.ts, ..req("b1", good()) };
    assert_eq!(send(&ingest, replayed).await.0, StatusCode::CREATED);
    std::fs::remove_dir_all(dir.path().join("incoming")).unwrap();

    let mut cases: Vec<(Req, &str, StatusCode)> = vec![
        (Req { signed: false, ..req("b1", good()) }, "unsigned", StatusCode::UNAUTHORIZED),
        (Req { secret: b"wrong", ..req("b1", good()) }, "bad_signature", StatusCode::UNAUTHORIZED),
        (
            Req { sign_body: Some(shard("dev-a", "b1", model(), 3, false)), ..req("b1", good()) },
            "bad_signature",
            StatusCode::UNAUTHORIZED,
        ),
        // An unknown device gets the answer of a bad signature: no way to enumerate devices.
        (Req { device: "nobody", ..req("b1", good()) }, "bad_signature", StatusCode::UNAUTHORIZED),
        (Req { ts: now() - 3_600_000, ..req("b1", good()) }, "stale_timestamp", StatusCode::UNAUTHORIZED),
        (replay_copy, "replayed", StatusCode::CONFLICT),
        (req("b1", shard("dev-a", "b1", model(), 200, false)), "oversized", StatusCode::PAYLOAD_TOO_LARGE),
        (
            req("b1", shard("dev-a", "b1", ModelId::of_bytes(b"other"), 2, false)),
            "wrong_model",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (req("b1", shard("dev-a", "b1", model(), 2, true)), "non_finite", StatusCode::UNPROCESSABLE_ENTITY),
        (req("b1", b"not a shard".to_vec()), "malformed", StatusCode::UNPROCESSABLE_ENTITY),
        (req("b1", shard("dev-b", "b1", model(), 2, false)), "outside_prefix", StatusCode::FORBIDDEN),
        (req("b2", good()), "outside_prefix", StatusCode::FORBIDDEN),
        // A batch id the local store would hide from listing (a temporary file's name), so
        // that it would be acknowledged and never aggregated.
        (req(".tmp-1-0", shard("dev-a", ".tmp-1-0", model(), 2, false)), "outside_prefix", StatusCode::FORBIDDEN),
        (req(".b1", shard("dev-a", ".b1", model(), 2, false)), "outside_prefix", StatusCode::FORBIDDEN),
    ];
    for (i, (r, want, status)) in cases.drain(..).enumerate() {
        let (got_status, body) = send(&ingest, r).await;
        assert_eq!((got_status, code(&body).as_str()), (status, want), "case {i}: {body}");
    }
    assert_eq!(LocalDir::new(dir.path()).list("").unwrap(), Vec::<String>::new(), "nothing stored");
    // Path traversal in the batch id never reaches a handler that stores anything.
    let (status, _) = send(&ingest, req("..%2F..%2Fmodels", good())).await;
    assert!(status.is_client_error());
    assert_eq!(LocalDir::new(dir.path()).list("").unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn rate_limit_is_per_device() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = service(dir.path(), Policy { rate_per_second: 0.001, rate_burst: 2.0, ..policy() });
    for _ in 0..2 {
        assert_eq!(send(&ingest, req("b1", shard("dev-a", "b1", model(), 2, false))).await.0, StatusCode::CREATED);
    }
    let (status, body) = send(&ingest, req("b1", shard("dev-a", "b1", model(), 2, false))).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
}

#[tokio::test]
async fn retries_are_stored_once_under_the_device_prefix_and_models_are_served_with_etags() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = service(dir.path(), policy());
    let bytes = shard("dev-a", "b7", model(), 4, false);
    for _ in 0..3 {
        let (status, body) = send(&ingest, req("b7", bytes.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let store = LocalDir::new(dir.path());
    assert_eq!(store.list("").unwrap(), ["incoming/dev-a/b7.shard"]);
    assert_eq!(store.get("incoming/dev-a/b7.shard").unwrap(), bytes);
    // The same batch retried by a device whose clock moved a day: still one object.
    let mut moved = Shard::decode(&bytes).unwrap();
    let header = ShardHeader { created_unix_ms: moved.header().created_unix_ms + 86_400_000, ..moved.header().clone() };
    moved = Shard::new(header, moved.into_parts().1, None).unwrap();
    let (status, body) = send(&ingest, req("b7", moved.encode().unwrap())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(store.list("").unwrap(), ["incoming/dev-a/b7.shard"], "a batch is its device and id alone");

    store.put(&layout::latest_key(&model()), b"{\"version\":1}").unwrap();
    let get = |etag: Option<String>| {
        let mut b = Request::get(format!("/{}", layout::latest_key(&model())));
        if let Some(e) = etag {
            b = b.header("if-none-match", e);
        }
        ingest.router().oneshot(b.body(Body::empty()).unwrap())
    };
    let first = get(None).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(get(Some(etag)).await.unwrap().status(), StatusCode::NOT_MODIFIED);
    // Absent: a version never published, a model this deployment does not take (even
    // with a file in storage), a path that is not a model id.
    let other = ModelId::of_bytes(b"not served");
    store.put(&layout::latest_key(&other), b"{\"version\":1}").unwrap();
    for path in
        [layout::projection_key(&model(), 9), layout::latest_key(&other), "models/projection/x/latest.json".into()]
    {
        let missing = ingest.router().oneshot(Request::get(format!("/{path}")).body(Body::empty()).unwrap()).await;
        assert_eq!(missing.unwrap().status(), StatusCode::NOT_FOUND, "{path}");
    }
}

/// A shard of `k`-wide codes from `model`'s projection `version`.
fn codes(model: ModelId, batch: &str, version: u32, k: u32) -> Vec<u8> {
    let header = ShardHeader {
        model_id: model,
        dim: k,
        rows: 2,
        encoding: Encoding::ProjectedF16 { projection_version: version },
        device_id: "dev-a".into(),
        batch_id: batch.into(),
        created_unix_ms: 1_767_225_600_000,
        label_vocabulary: Vec::new(),
    };
    Shard::new(header, (0..2 * k).map(|i| i as f32 / 8.0).collect(), None).unwrap().encode().unwrap()
}

/// Publishes a `k`-component projection of `model` as `version` into `store`.
fn publish(store: &LocalDir, version: u32, model: ModelId, k: u32) {
    let d = DIM as usize;
    let components: Vec<f32> = (0..k as usize * d).map(|i| f32::from(u8::from(i % (d + 1) == 0))).collect();
    let artifact = fruits_formats::ProjectionArtifact {
        version,
        model_id: model,
        created_unix_ms: 0,
        dim: DIM,
        k,
        rows: 10,
        mean: vec![0.0; d],
        components,
        explained_variance: vec![1.0; k as usize],
        explained_variance_ratio: vec![1.0 / DIM as f64; k as usize],
        total_variance: DIM as f64,
        head: None,
        catalogue: Vec::new(),
    };
    store.put(&layout::projection_key(&model, version), &artifact.encode().unwrap()).unwrap();
}

#[tokio::test]
async fn projected_codes_are_stored_apart_only_for_a_published_projection_of_their_width() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = service(dir.path(), policy());
    let store = LocalDir::new(dir.path());
    publish(&store, 1, model(), 3);
    publish(&store, 2, ModelId::of_bytes(b"other"), 3);

    let (status, body) = send(&ingest, req("c1", codes(model(), "c1", 1, 3))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (batch, version, k) in [("c2", 1, 4), ("c3", 2, 3), ("c4", 9, 3)] {
        let (status, body) = send(&ingest, req(batch, codes(model(), batch, version, k))).await;
        assert_eq!(
            (status, code(&body).as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "wrong_model"),
            "v{version} k{k}"
        );
    }
    let mut keys = store.list("").unwrap();
    keys.retain(|k| !k.starts_with("models/"));
    assert_eq!(keys, [layout::codes_key(&model(), 1, "dev-a", "c1")], "codes only, apart from incoming/");
}

#[tokio::test]
async fn a_fleet_of_two_models_uploads_through_one_ingest_each_model_apart() {
    let dir = tempfile::tempdir().unwrap();
    let int8 = ModelId::of_bytes(b"model-int8");
    let ingest = service(dir.path(), policy().with_model(int8, DIM));
    let store = LocalDir::new(dir.path());
    publish(&store, 1, int8, 3);
    let stranger = ModelId::of_bytes(b"stranger");
    let uploads = [
        ("e1", shard("dev-a", "e1", model(), 2, false), StatusCode::CREATED),
        ("e2", shard("dev-a", "e2", int8, 2, false), StatusCode::CREATED),
        ("e3", shard("dev-a", "e3", stranger, 2, false), StatusCode::UNPROCESSABLE_ENTITY),
        // Codes of the int8 model's v1 are taken; the first model has published nothing.
        ("c1", codes(int8, "c1", 1, 3), StatusCode::CREATED),
        ("c2", codes(model(), "c2", 1, 3), StatusCode::UNPROCESSABLE_ENTITY),
        ("c3", codes(stranger, "c3", 1, 3), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (batch, body, expected) in uploads {
        let (status, answer) = send(&ingest, req(batch, body)).await;
        assert_eq!(status, expected, "{batch}: {answer}");
    }
    let mut keys = store.list("").unwrap();
    keys.retain(|k| !k.starts_with(layout::MODELS_PREFIX));
    let expected = [
        layout::codes_key(&int8, 1, "dev-a", "c1"),
        layout::incoming_key("dev-a", "e1"),
        layout::incoming_key("dev-a", "e2"),
    ];
    assert_eq!(keys, expected);
    // Each model's series is served; the shards keep their model in their headers.
    let served = ingest
        .router()
        .oneshot(Request::get(format!("/{}", layout::projection_key(&int8, 1))).body(Body::empty()).unwrap());
    assert_eq!(served.await.unwrap().status(), StatusCode::OK);
    let e2 = Shard::decode(&store.get(&layout::incoming_key("dev-a", "e2")).unwrap()).unwrap();
    assert_eq!(e2.header().model_id, int8);
}

/// A body that never sends a byte, as a slow or hostile client's.
struct Endless;

impl http_body::Body for Endless {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

/// Sends `r`'s headers (and `content_length`, if given) with a body that never comes.
async fn send_endless(
    ingest: &Arc<Ingest>,
    r: Req,
    content_length: Option<u64>,
) -> (StatusCode, String, Option<String>) {
    let mut b = head(&r);
    if let Some(n) = content_length {
        b = b.header("content-length", n.to_string());
    }
    let call = ingest.router().oneshot(b.body(Body::new(Endless)).unwrap());
    let response = tokio::time::timeout(std::time::Duration::from_secs(5), call)
        .await
        .expect("answered from the headers, without waiting for the body")
        .unwrap();
    let status = response.status();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), retry_after)
}

#[tokio::test]
async fn requests_are_refused_from_their_headers_before_any_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let policy =
        Policy { body_timeout: std::time::Duration::from_millis(300), max_in_flight_bytes: 100 * 1024, ..policy() };
    let ingest = service(dir.path(), policy);
    let good = || shard("dev-a", "b1", model(), 2, false);
    let cases: Vec<(Req, Option<u64>, &str, StatusCode)> = vec![
        (Req { signed: false, ..req("b1", good()) }, Some(8 << 20), "unsigned", StatusCode::UNAUTHORIZED),
        (Req { secret: b"wrong", ..req("b1", good()) }, None, "bad_signature", StatusCode::UNAUTHORIZED),
        (Req { device: "nobody", ..req("b1", good()) }, None, "bad_signature", StatusCode::UNAUTHORIZED),
        // A client older than the header-first check: told so, not left waiting.
        (Req { hash_header: false, ..req("b1", good()) }, None, "body_hash_required", StatusCode::BAD_REQUEST),
        (req("b1", good()), Some(1_000_000_000_000), "oversized", StatusCode::PAYLOAD_TOO_LARGE),
        // Authenticated, but over the in-flight budget (100 KiB, a body may be 64 KiB).
        (req("b1", good()), None, "busy", StatusCode::SERVICE_UNAVAILABLE),
    ];
    let mut held = None;
    for (i, (r, length, want, status)) in cases.into_iter().enumerate() {
        if want == "busy" {
            // A chunked request in flight reserves the largest body: a second one is over.
            let (ingest, first) = (ingest.clone(), req("b1", good()));
            held = Some(tokio::spawn(async move { send_endless(&ingest, first, None).await }));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (got, body, retry_after) = send_endless(&ingest, r, length).await;
        assert_eq!((got, code(&body).as_str()), (status, want), "case {i}: {body}");
        assert_eq!(retry_after.is_some(), status == StatusCode::SERVICE_UNAVAILABLE, "case {i}");
    }
    // The request holding the budget was authenticated, but its body never came: refused
    // after the body timeout.
    let (got, body, _) = held.unwrap().await.unwrap();
    assert_eq!((got, code(&body).as_str()), (StatusCode::REQUEST_TIMEOUT, "slow_body"), "{body}");
    assert_eq!(ingest.in_flight_bytes(), 0, "every reservation released");
    assert_eq!(LocalDir::new(dir.path()).list("").unwrap(), Vec::<String>::new(), "nothing stored");
}

#[tokio::test]
async fn a_request_captured_before_a_restart_is_refused_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = service(dir.path(), policy());
    let bytes = shard("dev-a", "b1", model(), 2, false);
    let captured = req("b1", bytes.clone());
    let replay = Req { nonce: captured.nonce.clone(), ts: captured.ts, ..req("b1", bytes.clone()) };
    assert_eq!(send(&first, captured).await.0, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    // A new process over the same storage has none of the first one's nonces.
    let restarted = service(dir.path(), policy());
    let (status, body) = send(&restarted, replay).await;
    assert_eq!((status, code(&body).as_str()), (StatusCode::SERVICE_UNAVAILABLE, "signed_before_start"), "{body}");
    // A fresh signature is accepted, and every refusal carries the server's clock.
    assert_eq!(send(&restarted, req("b1", bytes)).await.0, StatusCode::CREATED);
    let (_, body) =
        send(&restarted, Req { ts: now() - 3_600_000, ..req("b1", shard("dev-a", "b1", model(), 2, false)) }).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["server_time_ms"].as_u64().unwrap().abs_diff(now()) < 60_000, "{body}");
}
