//! `aggregator ingest`: the authenticated upload endpoint for phones, and the
//! read-only mirror of published projections they sync from.
//!
//! * `PUT /v1/batches/<batch id>`: one shard, signed per device ([`auth`]).
//!   Checked ([`check`]) before anything is stored, then written to
//!   `incoming/<device>/<batch id>.shard` (full embeddings) or
//!   `codes/<model>/v<projection>/<device>/<batch id>.shard` (codes projected
//!   with a published projection of their model, whose width is checked). Shards of
//!   every model of the [`Policy`] are accepted, so a fleet can move from one model to
//!   another. The key derives from the device and its batch id only, so a retry
//!   rewrites the same object with the same bytes: exactly-once storage without
//!   conditional writes (which Garage does not enforce).
//! * `GET /models/projection/<model>/<file>`, with `ETag` / `If-None-Match`: each model's
//!   published projections, for phones, which hold no AWS credentials.
//!
//! Why direct writes through this service rather than presigned S3 URLs: phones
//! batch embeddings (64 rows per shard by default), so PUTs are few and the extra
//! hop is cheap; and every shard is decoded and validated (model, dimension,
//! finite values, size, device prefix, rate) before it reaches storage, which a
//! presigned URL cannot do - bad data would land in `incoming/` and only be
//! quarantined later by the aggregator.
//!
//! Unauthenticated load costs little ([`serve`]): a request is authenticated from its
//! headers before its body is read (the body's hash is signed and sent in a header, and
//! the streamed body must match it), the size limit is enforced while streaming, headers,
//! idle connections and bodies have timeouts, and connections and body bytes in flight
//! are capped (503 with `Retry-After` beyond). Freed body buffers are handed back to the
//! operating system within a second ([`trim_freed_memory`]).
//!
//! Replays: nonces are remembered for the window in memory, and a restarted process
//! refuses every timestamp before its start (plus [`Policy::future_ms`]), so nothing
//! signed before a restart is accepted after it. Two processes over one bucket do not
//! share nonces: a request captured on its way to one can be replayed to the other
//! within the window, and then rewrites the same object with the same bytes (the key is
//! the device and batch id, the body is the signed one), so nothing is stored twice.
//!
//! Storage calls are synchronous ([`Storage`]); handlers run them on tokio's
//! blocking pool.

pub mod auth;
pub mod check;

use crate::storage::Storage;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use check::{AuthHeaders, IngestError, Policy};
use fruits_formats::{ModelId, layout};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// One registered device in `devices.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceEntry {
    /// The device id (a key segment).
    pub id: String,
    /// Its HMAC secret, hex.
    pub secret: String,
}

/// `devices.json`: `{"devices": [{"id": "...", "secret": "<hex>"}]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct DevicesFile {
    /// Registered devices.
    pub devices: Vec<DeviceEntry>,
}

impl DevicesFile {
    /// Id -> secret bytes; refuses unsafe ids and bad hex.
    pub fn secrets(&self) -> Result<HashMap<String, Vec<u8>>, DeviceError> {
        self.devices
            .iter()
            .map(|d| {
                if !check::safe_segment(&d.id) {
                    return Err(DeviceError::UnsafeId(d.id.clone()));
                }
                let secret = hex::decode(&d.secret).map_err(|_| DeviceError::SecretNotHex(d.id.clone()))?;
                Ok((d.id.clone(), secret))
            })
            .collect()
    }
}

/// Why `devices.json` cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    /// An id that is not a safe storage-key segment.
    #[error("device id {0:?} is not a safe key segment")]
    UnsafeId(String),
    /// A secret that is not hex.
    #[error("device {0}: secret is not hex")]
    SecretNotHex(String),
}

/// Counters, for tests and logs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Batches written to storage (retries included).
    pub stored: AtomicU64,
    /// Requests refused.
    pub refused: AtomicU64,
    /// Connections answered 503 at the connection cap.
    pub connections_refused: AtomicU64,
}

/// Locks `m`, recovering the data if another request panicked while holding it: every
/// guarded value here (nonces, buckets, widths) stays consistent between statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything the handlers share.
pub struct Ingest {
    storage: Arc<dyn Storage + Send>,
    devices: HashMap<String, Vec<u8>>,
    policy: Policy,
    nonces: Mutex<auth::NonceCache>,
    rate: Mutex<auth::RateLimiter>,
    /// Width `k` of each published projection, by model and version, read once each.
    projection_widths: Mutex<HashMap<(ModelId, u32), u32>>,
    /// Timestamps before this are refused: start + `future_ms` ([`check::Window`]).
    horizon_ms: u64,
    /// Body bytes reserved by requests being received or stored.
    in_flight_bytes: AtomicUsize,
    /// Set when a large body was freed, cleared by [`trim_freed_memory`].
    freed: AtomicBool,
    /// Counters.
    pub stats: Stats,
}

impl Ingest {
    /// A service writing to `storage` for the given devices and policy.
    pub fn new(storage: Arc<dyn Storage + Send>, devices: HashMap<String, Vec<u8>>, policy: Policy) -> Arc<Self> {
        let horizon_ms = crate::clock::now_unix_ms() + policy.future_ms;
        Arc::new(Self {
            storage,
            devices,
            policy,
            nonces: Mutex::default(),
            rate: Mutex::default(),
            projection_widths: Mutex::default(),
            horizon_ms,
            in_flight_bytes: AtomicUsize::new(0),
            freed: AtomicBool::new(false),
            stats: Stats::default(),
        })
    }

    /// Body bytes reserved by requests in progress.
    pub fn in_flight_bytes(&self) -> usize {
        self.in_flight_bytes.load(Ordering::Relaxed)
    }

    /// Reserves `bytes` of the in-flight budget, released when the guard drops.
    fn reserve(&self, bytes: usize) -> Option<Reservation<'_>> {
        let cap = self.policy.max_in_flight_bytes;
        self.in_flight_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| held.checked_add(bytes).filter(|&n| n <= cap))
            .ok()
            .map(|_| Reservation { ingest: self, bytes })
    }

    /// The HTTP routes ([`layout`]).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(layout::BATCH_ROUTE, put(upload))
            .route(layout::MODEL_FILE_ROUTE, get(model_file))
            .with_state(self.clone())
    }

    fn refuse(&self, e: IngestError) -> Response {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        tracing::info!(code = e.code(), "upload refused: {e}");
        refusal(&e)
    }
}

/// A share of the in-flight byte budget.
struct Reservation<'a> {
    ingest: &'a Ingest,
    bytes: usize,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.ingest.in_flight_bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        if self.bytes >= 1 << 20 {
            self.ingest.freed.store(true, Ordering::Relaxed);
        }
    }
}

/// The JSON answer to a refused request: its code, detail and the server's clock (from
/// which a device whose timestamp was refused corrects its own), with `Retry-After` when
/// the answer means "later".
fn refusal(e: &IngestError) -> Response {
    let body = refusal_body(e);
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(seconds) = e.retry_after_s() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The JSON body of a refusal, for the router's answers and the accept loop's alike.
fn refusal_body(e: &IngestError) -> String {
    serde_json::json!({
        "error": e.code(),
        "detail": e.to_string(),
        "server_time_ms": crate::clock::now_unix_ms(),
    })
    .to_string()
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn upload(
    State(s): State<Arc<Ingest>>,
    Path(batch_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let h = AuthHeaders {
        device: header_str(&headers, auth::H_DEVICE),
        timestamp: header_str(&headers, auth::H_TIMESTAMP),
        nonce: header_str(&headers, auth::H_NONCE),
        content_sha256: header_str(&headers, auth::H_CONTENT_SHA256),
        signature: header_str(&headers, auth::H_SIGNATURE),
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // Everything before the body: headers, signature, window, nonce, rate, budget.
    let admitted = (|| {
        if h.device.is_none() || h.signature.is_none() {
            return Err(IngestError::Unsigned);
        }
        if let Some(n) = declared.filter(|&n| n > s.policy.max_body as u64) {
            return Err(IngestError::Oversized(usize::try_from(n).unwrap_or(usize::MAX)));
        }
        let window = check::Window {
            now_ms: crate::clock::now_unix_ms(),
            past_ms: s.policy.window_ms,
            future_ms: s.policy.future_ms,
            horizon_ms: s.horizon_ms,
        };
        let path = layout::batch_path(&batch_id);
        let device = check::authenticate(&s.devices, &mut lock(&s.nonces), &h, "PUT", &path, window)?;
        if !lock(&s.rate).allow(&device, window.now_ms, s.policy.rate_per_second, s.policy.rate_burst) {
            return Err(IngestError::RateLimited);
        }
        let reserve = declared.map_or(s.policy.max_body, |n| n as usize);
        let reservation = s.reserve(reserve).ok_or(IngestError::Busy)?;
        Ok((device, reservation))
    })();
    let (device, _reservation) = match admitted {
        Ok(admitted) => admitted,
        Err(e) => return s.refuse(e),
    };
    let capacity = declared.map_or(64 << 10, |n| n as usize);
    let body = match tokio::time::timeout(s.policy.body_timeout, read_body(body, s.policy.max_body, capacity)).await {
        Err(_) => return s.refuse(IngestError::SlowBody),
        Ok(Err(e)) => return s.refuse(e),
        Ok(Ok(body)) => body,
    };
    // The body must be the one signed (its hash is in the signature).
    if h.content_sha256.as_deref() != Some(auth::body_hash(&body).as_str()) {
        return s.refuse(IngestError::BadSignature);
    }
    let projection_k = match check::projection_of(&body) {
        Some((model, version)) => s.projection_width(model, version).await,
        None => None,
    };
    let checked = check::check_batch(&s.policy, &device, &batch_id, &body, projection_k);
    let key = match checked {
        Ok(key) => key,
        Err(e) => return s.refuse(e),
    };
    let storage = s.storage.clone();
    let stored_key = key.clone();
    match tokio::task::spawn_blocking(move || storage.put(&stored_key, &body)).await {
        Ok(Ok(())) => {
            s.stats.stored.fetch_add(1, Ordering::Relaxed);
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::json!({ "key": key }).to_string(),
            )
                .into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(key, "storage write failed: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Reads a body of at most `max` bytes, refusing it as soon as it grows past.
async fn read_body(body: Body, max: usize, capacity: usize) -> Result<Vec<u8>, IngestError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut bytes = Vec::with_capacity(capacity.min(max));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| IngestError::Malformed(format!("body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > max {
                return Err(IngestError::Oversized(bytes.len() + data.len()));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

impl Ingest {
    /// The width of `model`'s published projection `version`, `None` if the model is not
    /// one of this deployment's or the projection does not exist (or cannot be read now).
    async fn projection_width(&self, model: ModelId, version: u32) -> Option<u32> {
        if !self.policy.models.contains_key(&model) {
            return None;
        }
        if let Some(k) = lock(&self.projection_widths).get(&(model, version)) {
            return Some(*k);
        }
        let storage = self.storage.clone();
        let key = layout::projection_key(&model, version);
        let bytes = tokio::task::spawn_blocking(move || storage.get(&key)).await.ok()?.ok()?;
        let artifact = fruits_formats::ProjectionArtifact::decode(&bytes).ok()?;
        (artifact.model_id == model && artifact.version == version).then(|| {
            lock(&self.projection_widths).insert((model, version), artifact.k);
            artifact.k
        })
    }
}

async fn model_file(
    State(s): State<Arc<Ingest>>,
    Path((model, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Ok(model) = model.parse::<ModelId>() else { return StatusCode::NOT_FOUND.into_response() };
    if !check::safe_segment(&file) || !s.policy.models.contains_key(&model) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let storage = s.storage.clone();
    let key = layout::published_key(&model, &file);
    let bytes = match tokio::task::spawn_blocking(move || storage.get(&key)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return StatusCode::NOT_FOUND.into_response(),
        _ => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(&bytes)));
    let Ok(etag_value) = HeaderValue::from_str(&etag) else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    let content_type = if file.ends_with(".json") { "application/json" } else { "application/octet-stream" };
    (
        StatusCode::OK,
        [(header::ETAG, etag_value), (header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        bytes,
    )
        .into_response()
}

/// Serves until the listener fails: one task per connection, HTTP/1.1 with keep-alive,
/// under [`Policy::max_connections`] (beyond it a connection gets a 503 with
/// `Retry-After` and is closed), [`Policy::header_timeout`] for each request's headers
/// and for an idle connection, and a read buffer of 64 KiB per connection. Freed body
/// memory is returned to the operating system about once a second.
pub async fn serve(listener: tokio::net::TcpListener, ingest: Arc<Ingest>) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let router = ingest.router();
    let slots = Arc::new(tokio::sync::Semaphore::new(ingest.policy.max_connections));
    let trimmer = tokio::spawn(trim_freed_memory(ingest.clone()));
    let result = loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors and friends: wait for connections to close.
            Err(e) if is_transient_accept_error(&e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => break Err(e),
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            ingest.stats.connections_refused.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse_connection(stream));
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let header_timeout = ingest.policy.header_timeout;
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(64 << 10)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!("connection closed: {e}");
            }
            drop(slot);
        });
    };
    trimmer.abort();
    result
}

fn is_transient_accept_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) || e.raw_os_error() == Some(libc::EMFILE)
}

/// Answers a connection over the cap with a 503 and closes it, giving it one second.
async fn refuse_connection(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let e = IngestError::Busy;
    let body = refusal_body(&e);
    let response = format!(
        "HTTP/1.1 {} Service Unavailable\r\nRetry-After: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        e.status(),
        e.retry_after_s().unwrap_or(1),
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(response.as_bytes())).await;
}

/// Returns freed heap memory to the operating system once a second after a large body
/// was freed: glibc keeps freed memory in its arenas otherwise, so a burst of uploads
/// would leave the server's RSS at its peak.
pub async fn trim_freed_memory(ingest: Arc<Ingest>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if ingest.freed.swap(false, Ordering::Relaxed) {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only releases free pages of the allocator's own arenas.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}
