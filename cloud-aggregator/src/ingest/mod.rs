//! `aggregator ingest`: the authenticated upload endpoint for phones, and the
//! read-only mirror of published projections they sync from.
//!
//! * `PUT /v1/batches/<batch id>`: one shard, signed per device ([`auth`]).
//!   Checked ([`check`]) before anything is stored, then written to
//!   `incoming/<yyyy-mm-dd>/<device>/<batch id>.shard` (full embeddings) or
//!   `codes/v<projection>/<yyyy-mm-dd>/<device>/<batch id>.shard` (codes projected
//!   with a published projection, whose width is checked). The key derives from the
//!   device and its batch id only, so a retry rewrites the same object with the
//!   same bytes: exactly-once storage without conditional writes (which Garage
//!   does not enforce).
//! * `GET /models/projection/<file>` (and `/models/latest.json` as an alias of
//!   `latest.json`), with `ETag` / `If-None-Match`: phones hold no AWS credentials.
//!
//! Why direct writes through this service rather than presigned S3 URLs: phones
//! batch embeddings (64 rows per shard by default), so PUTs are few and the extra
//! hop is cheap; and every shard is decoded and validated (model, dimension,
//! finite values, size, device prefix, rate) before it reaches storage, which a
//! presigned URL cannot do - bad data would land in `incoming/` and only be
//! quarantined later by the aggregator.
//!
//! Storage calls are synchronous ([`Storage`]); handlers run them on tokio's
//! blocking pool.

pub mod auth;
pub mod check;

use crate::storage::Storage;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use check::{AuthHeaders, IngestError, Policy};
use fruits_formats::layout;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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
    pub fn secrets(&self) -> anyhow::Result<HashMap<String, Vec<u8>>> {
        self.devices
            .iter()
            .map(|d| {
                anyhow::ensure!(check::safe_segment(&d.id), "device id {:?} is not a safe key segment", d.id);
                Ok((
                    d.id.clone(),
                    hex::decode(&d.secret).map_err(|_| anyhow::anyhow!("device {}: secret is not hex", d.id))?,
                ))
            })
            .collect()
    }
}

/// Counters, for tests and logs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Batches written to storage (retries included).
    pub stored: AtomicU64,
    /// Requests refused.
    pub refused: AtomicU64,
}

/// Everything the handlers share.
pub struct Ingest {
    storage: Arc<dyn Storage + Send>,
    devices: HashMap<String, Vec<u8>>,
    policy: Policy,
    nonces: Mutex<auth::NonceCache>,
    rate: Mutex<auth::RateLimiter>,
    /// Width `k` of each published projection of this model, read once per version.
    projection_widths: Mutex<HashMap<u32, u32>>,
    /// Counters.
    pub stats: Stats,
}

impl Ingest {
    /// A service writing to `storage` for the given devices and policy.
    pub fn new(storage: Arc<dyn Storage + Send>, devices: HashMap<String, Vec<u8>>, policy: Policy) -> Arc<Self> {
        Arc::new(Self {
            storage,
            devices,
            policy,
            nonces: Mutex::default(),
            rate: Mutex::default(),
            projection_widths: Mutex::default(),
            stats: Stats::default(),
        })
    }

    /// The HTTP routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(layout::BATCH_ROUTE, put(upload))
            .route("/models/latest.json", get(|s, h| model_file(s, Path("latest.json".to_owned()), h)))
            .route(layout::MODEL_FILE_ROUTE, get(model_file))
            .layer(DefaultBodyLimit::max(self.policy.max_body * 2))
            .with_state(self.clone())
    }

    fn refuse(&self, e: IngestError) -> Response {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        tracing::info!(code = e.code(), "upload refused: {e}");
        let body = serde_json::json!({ "error": e.code(), "detail": e.to_string() }).to_string();
        (StatusCode::from_u16(e.status()).expect("valid status"), [(header::CONTENT_TYPE, "application/json")], body)
            .into_response()
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn upload(
    State(s): State<Arc<Ingest>>,
    Path(batch_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = AuthHeaders {
        device: header_str(&headers, auth::H_DEVICE),
        timestamp: header_str(&headers, auth::H_TIMESTAMP),
        nonce: header_str(&headers, auth::H_NONCE),
        signature: header_str(&headers, auth::H_SIGNATURE),
    };
    let path = layout::batch_path(&batch_id);
    let now = crate::clock::now_unix_ms();
    let authenticated = (|| {
        if h.device.is_none() || h.signature.is_none() {
            return Err(IngestError::Unsigned);
        }
        if body.len() > s.policy.max_body {
            return Err(IngestError::Oversized(body.len()));
        }
        let mut nonces = s.nonces.lock().expect("nonce lock");
        let device = check::authenticate(
            &s.devices,
            &mut nonces,
            &h,
            check::SignedRequest { method: "PUT", path: &path, body: &body },
            now,
            s.policy.window_ms,
        )?;
        drop(nonces);
        if !s.rate.lock().expect("rate lock").allow(&device, now, s.policy.rate_per_second, s.policy.rate_burst) {
            return Err(IngestError::RateLimited);
        }
        Ok(device)
    })();
    let device = match authenticated {
        Ok(device) => device,
        Err(e) => return s.refuse(e),
    };
    let projection_k = match check::projection_version(&body) {
        Some(version) => s.projection_width(version).await,
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

impl Ingest {
    /// The width of published projection `version` of this deployment's model,
    /// `None` if it does not exist (or cannot be read now).
    async fn projection_width(&self, version: u32) -> Option<u32> {
        if let Some(k) = self.projection_widths.lock().expect("widths lock").get(&version) {
            return Some(*k);
        }
        let storage = self.storage.clone();
        let key = layout::projection_key(version);
        let bytes = tokio::task::spawn_blocking(move || storage.get(&key)).await.ok()?.ok()?;
        let artifact = fruits_formats::ProjectionArtifact::decode(&bytes).ok()?;
        (artifact.model_id == self.policy.model_id && artifact.version == version).then(|| {
            self.projection_widths.lock().expect("widths lock").insert(version, artifact.k);
            artifact.k
        })
    }
}

async fn model_file(State(s): State<Arc<Ingest>>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    if !check::safe_segment(&file) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let storage = s.storage.clone();
    let key = format!("{}{file}", layout::PROJECTION_PREFIX);
    let bytes = match tokio::task::spawn_blocking(move || storage.get(&key)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return StatusCode::NOT_FOUND.into_response(),
        _ => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(&bytes)));
    let etag_value = HeaderValue::from_str(&etag).expect("hex is a valid header");
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

/// Serves until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, ingest: Arc<Ingest>) -> std::io::Result<()> {
    axum::serve(listener, ingest.router()).await
}
