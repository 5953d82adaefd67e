//! What an upload must satisfy before it reaches storage (pure).

use super::auth;
use fruits_formats::{Encoding, FormatError, ModelId, Shard, layout};
use std::collections::{BTreeMap, HashMap};

/// Why an upload was refused; each has its own stable code and HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// Authentication headers are missing.
    #[error("request is not signed")]
    Unsigned,
    /// Signed without the body's hash in a header: a client older than this server.
    #[error("the body's sha256 must be sent and signed in x-fruits-content-sha256 (update the SDK)")]
    BodyHashRequired,
    /// The HMAC does not match, or the device is not registered: both get this one answer,
    /// so that a client cannot tell registered devices from others.
    #[error("bad signature")]
    BadSignature,
    /// The timestamp is outside the replay window (the answer carries the server's clock,
    /// so that a device can correct its own).
    #[error("timestamp outside the replay window")]
    StaleTimestamp,
    /// Signed before this server process started, when nonces it had seen may be lost: a
    /// replay, or a request to sign anew after `retry_after_ms`.
    #[error("signed before the server started: sign the request again")]
    SignedBeforeStart {
        /// When a fresh signature will be accepted.
        retry_after_ms: u64,
    },
    /// The nonce was already used.
    #[error("request replayed")]
    Replayed,
    /// The body is larger than allowed.
    #[error("body of {0} bytes is over the limit")]
    Oversized(usize),
    /// The shard does not decode.
    #[error("malformed shard: {0}")]
    Malformed(String),
    /// The shard holds NaN or infinity.
    #[error("shard holds a non-finite value")]
    NonFinite,
    /// The shard is for another model, dimension or encoding.
    #[error("wrong model: {0}")]
    WrongModel(String),
    /// The shard names another device or batch than the signed request.
    #[error("shard is for {0}, outside this device's prefix")]
    OutsidePrefix(String),
    /// Too many requests from this device.
    #[error("rate limited")]
    RateLimited,
    /// The body did not arrive within the body timeout.
    #[error("body not received in time")]
    SlowBody,
    /// Too many connections or bytes in flight: retry later.
    #[error("server busy")]
    Busy,
}

impl IngestError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::BodyHashRequired => "body_hash_required",
            Self::BadSignature => "bad_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::SignedBeforeStart { .. } => "signed_before_start",
            Self::Replayed => "replayed",
            Self::Oversized(_) => "oversized",
            Self::Malformed(_) => "malformed",
            Self::NonFinite => "non_finite",
            Self::WrongModel(_) => "wrong_model",
            Self::OutsidePrefix(_) => "outside_prefix",
            Self::RateLimited => "rate_limited",
            Self::SlowBody => "slow_body",
            Self::Busy => "busy",
        }
    }

    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unsigned | Self::BadSignature | Self::StaleTimestamp => 401,
            Self::BodyHashRequired => 400,
            Self::SlowBody => 408,
            Self::SignedBeforeStart { .. } | Self::Busy => 503,
            Self::Replayed => 409,
            Self::Oversized(_) => 413,
            Self::Malformed(_) | Self::NonFinite | Self::WrongModel(_) => 422,
            Self::OutsidePrefix(_) => 403,
            Self::RateLimited => 429,
        }
    }

    /// Seconds a client should wait before retrying, for answers that say "later".
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            Self::SignedBeforeStart { retry_after_ms } => Some(retry_after_ms.div_ceil(1000).max(1)),
            Self::Busy => Some(1),
            _ => None,
        }
    }
}

/// Limits and expectations of one ingest deployment.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The models shards may come from, each with its embedding dimension: a fleet moving
    /// from one model to another uploads both, each kept to its own keys.
    pub models: BTreeMap<ModelId, u32>,
    /// Largest body accepted, bytes.
    pub max_body: usize,
    /// Most rows per shard.
    pub max_rows: u32,
    /// Accepted age of a request's timestamp, ms (a device's clock may lag this much).
    pub window_ms: u64,
    /// Accepted lead of a request's timestamp, ms: small, since a device whose clock is
    /// ahead corrects it from the server's answer, and since after a restart requests
    /// signed before start + this lead are refused ([`IngestError::SignedBeforeStart`]).
    pub future_ms: u64,
    /// Sustained requests per second per device.
    pub rate_per_second: f64,
    /// Burst of requests per device.
    pub rate_burst: f64,
    /// Time allowed for a request's headers, and for an idle connection between requests.
    pub header_timeout: std::time::Duration,
    /// Time allowed for a request's whole body once its headers are authenticated.
    pub body_timeout: std::time::Duration,
    /// Most connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Most body bytes held by all requests at once (each reserves its declared length,
    /// or [`max_body`](Self::max_body) when chunked); more are answered 503.
    pub max_in_flight_bytes: usize,
}

impl Policy {
    /// Default largest body, bytes (`aggregator ingest --max-body`).
    pub const DEFAULT_MAX_BODY: usize = 4 << 20;
    /// Default sustained uploads per second per device (`--rate-per-second`).
    pub const DEFAULT_RATE_PER_SECOND: f64 = 1.0;
    /// Default burst per device (`--rate-burst`).
    pub const DEFAULT_RATE_BURST: f64 = 30.0;
    /// Default connection cap (`--max-connections`).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
    /// Default header and idle timeout, seconds (`--header-timeout-secs`).
    pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
    /// Default body timeout, seconds (`--body-timeout-secs`).
    pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 30;

    /// The defaults of a deployment for `model_id` shards of `dim`: 4 MiB bodies, a
    /// 5-minute window with a 1 s lead, 1 upload/s per device with bursts of 30,
    /// 10 s for headers, 30 s for a body, 512 connections and 64 MiB in flight.
    /// [`with_model`](Self::with_model) accepts more models.
    pub fn new(model_id: ModelId, dim: u32) -> Self {
        Self {
            models: BTreeMap::from([(model_id, dim)]),
            max_body: Self::DEFAULT_MAX_BODY,
            max_rows: fruits_formats::shard::MAX_ROWS,
            window_ms: 300_000,
            future_ms: 1_000,
            rate_per_second: Self::DEFAULT_RATE_PER_SECOND,
            rate_burst: Self::DEFAULT_RATE_BURST,
            header_timeout: std::time::Duration::from_secs(Self::DEFAULT_HEADER_TIMEOUT_SECS),
            body_timeout: std::time::Duration::from_secs(Self::DEFAULT_BODY_TIMEOUT_SECS),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_in_flight_bytes: 64 << 20,
        }
    }

    /// This policy, also accepting `model_id` shards of `dim`.
    pub fn with_model(mut self, model_id: ModelId, dim: u32) -> Self {
        self.models.insert(model_id, dim);
        self
    }
}

/// The authentication headers of one request, as received.
#[derive(Debug, Clone, Default)]
pub struct AuthHeaders {
    /// `x-fruits-device`.
    pub device: Option<String>,
    /// `x-fruits-timestamp`.
    pub timestamp: Option<String>,
    /// `x-fruits-nonce`.
    pub nonce: Option<String>,
    /// `x-fruits-content-sha256`.
    pub content_sha256: Option<String>,
    /// `x-fruits-signature`.
    pub signature: Option<String>,
}

/// When a request's timestamp is acceptable, by the server's clock.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// The server's clock, Unix ms.
    pub now_ms: u64,
    /// Oldest accepted timestamp's age ([`Policy::window_ms`]).
    pub past_ms: u64,
    /// Largest accepted lead ([`Policy::future_ms`]).
    pub future_ms: u64,
    /// Timestamps before this are refused as [`IngestError::SignedBeforeStart`]: the
    /// process's start plus [`Policy::future_ms`], so that nothing signed before a
    /// restart (whose nonces the new process never saw) is accepted after it.
    pub horizon_ms: u64,
}

/// Checks the signature, window and replay of a request from its headers alone (the body
/// is checked against the signed hash as it streams in); the authenticated device.
pub fn authenticate(
    devices: &HashMap<String, Vec<u8>>,
    nonces: &mut auth::NonceCache,
    h: &AuthHeaders,
    method: &str,
    path: &str,
    window: Window,
) -> Result<String, IngestError> {
    let (Some(device), Some(ts), Some(nonce), Some(sig)) = (&h.device, &h.timestamp, &h.nonce, &h.signature) else {
        return Err(IngestError::Unsigned);
    };
    let Some(body_sha256_hex) = &h.content_sha256 else { return Err(IngestError::BodyHashRequired) };
    let timestamp_ms: u64 = ts.parse().map_err(|_| IngestError::BadSignature)?;
    // An unknown device is checked against a secret no device has, so that its answer (and
    // the work behind it) is the one of a bad signature.
    let known = devices.get(device);
    let secret = known.map_or(&[][..], Vec::as_slice);
    let signed = auth::Signed { method, path, body_sha256_hex, timestamp_ms, nonce };
    if !auth::verify(secret, signed, sig) || known.is_none() {
        return Err(IngestError::BadSignature);
    }
    let Window { now_ms, past_ms, future_ms, horizon_ms } = window;
    if timestamp_ms < now_ms.saturating_sub(past_ms) || timestamp_ms > now_ms.saturating_add(future_ms) {
        return Err(IngestError::StaleTimestamp);
    }
    if timestamp_ms < horizon_ms {
        return Err(IngestError::SignedBeforeStart { retry_after_ms: horizon_ms - now_ms.min(horizon_ms) });
    }
    if nonce.is_empty() || nonce.len() > 128 || !nonces.check_and_insert(device, nonce, now_ms, past_ms + future_ms) {
        return Err(IngestError::Replayed);
    }
    Ok(device.clone())
}

/// Whether `id` is safe as one key segment (letters, digits, `-`, `_`, `.`, 1-128 bytes, not
/// starting with `.`: neither `.`/`..` nor a name the local store hides, such as `.tmp-*`).
pub fn safe_segment(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The model and projection a shard of codes was made with, if it is one (read from the
/// header only, after authentication, so the service knows which `k` to expect).
pub fn projection_of(body: &[u8]) -> Option<(ModelId, u32)> {
    let header = Shard::decode_header(body).ok()?;
    match header.encoding {
        Encoding::ProjectedF16 { projection_version } => Some((header.model_id, projection_version)),
        Encoding::F32 | Encoding::F16 => None,
    }
}

/// Validates an authenticated device's batch and returns its storage key.
///
/// Full embeddings go to [`layout::incoming_key`], which the aggregator's PCA reads;
/// projected codes to [`layout::codes_key`] of their model, which it does not. The key is
/// the device and batch id alone (and the model and projection, for codes), never the
/// device's clock, so a retry on another day, or after the device's clock moved, maps to
/// the same key. `projection_k` is the width of the published projection the shard's codes
/// claim to come from (`None` when that version was never published for their model):
/// codes of any other width are refused.
pub fn check_batch(
    policy: &Policy,
    device: &str,
    batch_id: &str,
    body: &[u8],
    projection_k: Option<u32>,
) -> Result<String, IngestError> {
    if body.len() > policy.max_body {
        return Err(IngestError::Oversized(body.len()));
    }
    if !safe_segment(device) || !safe_segment(batch_id) {
        return Err(IngestError::OutsidePrefix(format!("{device}/{batch_id}")));
    }
    let shard = Shard::decode(body).map_err(|e| match e {
        FormatError::NonFinite { .. } => IngestError::NonFinite,
        e => IngestError::Malformed(e.to_string()),
    })?;
    let h = shard.header();
    if h.device_id != device || h.batch_id != batch_id {
        return Err(IngestError::OutsidePrefix(format!("{}/{}", h.device_id, h.batch_id)));
    }
    let wrong = || IngestError::WrongModel(format!("{} dim {} {:?}", h.model_id, h.dim, h.encoding));
    let Some(&dim) = policy.models.get(&h.model_id) else { return Err(wrong()) };
    let codes_of = match h.encoding {
        Encoding::F32 | Encoding::F16 if h.dim == dim => None,
        Encoding::ProjectedF16 { projection_version } if projection_k == Some(h.dim) => Some(projection_version),
        _ => return Err(wrong()),
    };
    if h.rows == 0 || h.rows > policy.max_rows {
        return Err(IngestError::Oversized(h.rows as usize));
    }
    Ok(match codes_of {
        None => layout::incoming_key(device, batch_id),
        Some(version) => layout::codes_key(&h.model_id, version, device, batch_id),
    })
}
