//! What an upload must satisfy before it reaches storage (pure).

use super::auth;
use fruits_formats::{Encoding, FormatError, ModelId, Shard, layout};
use std::collections::HashMap;

/// Why an upload was refused; each has its own stable code and HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// Authentication headers are missing.
    #[error("request is not signed")]
    Unsigned,
    /// The HMAC does not match, or the device is not registered: both get this one answer,
    /// so that a client cannot tell registered devices from others.
    #[error("bad signature")]
    BadSignature,
    /// The timestamp is outside the replay window.
    #[error("timestamp outside the replay window")]
    StaleTimestamp,
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
}

impl IngestError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::BadSignature => "bad_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::Replayed => "replayed",
            Self::Oversized(_) => "oversized",
            Self::Malformed(_) => "malformed",
            Self::NonFinite => "non_finite",
            Self::WrongModel(_) => "wrong_model",
            Self::OutsidePrefix(_) => "outside_prefix",
            Self::RateLimited => "rate_limited",
        }
    }

    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unsigned | Self::BadSignature | Self::StaleTimestamp => 401,
            Self::Replayed => 409,
            Self::Oversized(_) => 413,
            Self::Malformed(_) | Self::NonFinite | Self::WrongModel(_) => 422,
            Self::OutsidePrefix(_) => 403,
            Self::RateLimited => 429,
        }
    }
}

/// Limits and expectations of one ingest deployment.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The model shards must come from.
    pub model_id: ModelId,
    /// Their dimension.
    pub dim: u32,
    /// Largest body accepted, bytes.
    pub max_body: usize,
    /// Most rows per shard.
    pub max_rows: u32,
    /// Accepted clock skew either way, ms.
    pub window_ms: u64,
    /// Sustained requests per second per device.
    pub rate_per_second: f64,
    /// Burst of requests per device.
    pub rate_burst: f64,
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
    /// `x-fruits-signature`.
    pub signature: Option<String>,
}

/// The signed parts of one request: what the signature covers besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The HTTP method, `PUT`.
    pub method: &'a str,
    /// The request path, including the device and batch segments.
    pub path: &'a str,
    /// The body as received.
    pub body: &'a [u8],
}

/// Checks the signature, window and replay of a request; the authenticated device.
pub fn authenticate(
    devices: &HashMap<String, Vec<u8>>,
    nonces: &mut auth::NonceCache,
    h: &AuthHeaders,
    req: SignedRequest<'_>,
    now_ms: u64,
    window_ms: u64,
) -> Result<String, IngestError> {
    let SignedRequest { method, path, body } = req;
    let (Some(device), Some(ts), Some(nonce), Some(sig)) = (&h.device, &h.timestamp, &h.nonce, &h.signature) else {
        return Err(IngestError::Unsigned);
    };
    let ts: u64 = ts.parse().map_err(|_| IngestError::BadSignature)?;
    // An unknown device is checked against a secret no device has, so that its answer (and
    // the work behind it) is the one of a bad signature.
    let known = devices.get(device);
    let secret = known.map_or(&[][..], Vec::as_slice);
    if !auth::verify(secret, method, path, body, ts, nonce, sig) || known.is_none() {
        return Err(IngestError::BadSignature);
    }
    if ts.abs_diff(now_ms) > window_ms {
        return Err(IngestError::StaleTimestamp);
    }
    if nonce.is_empty() || nonce.len() > 128 || !nonces.check_and_insert(device, nonce, now_ms, window_ms) {
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

/// The projection a shard of codes was made with, if it is one (read from the
/// header only, after authentication, so the service knows which `k` to expect).
pub fn projection_version(body: &[u8]) -> Option<u32> {
    match Shard::decode_header(body).ok()?.encoding {
        Encoding::ProjectedF16 { projection_version } => Some(projection_version),
        Encoding::F32 | Encoding::F16 => None,
    }
}

/// Validates an authenticated device's batch and returns its storage key.
///
/// Full embeddings go to `incoming/<yyyy-mm-dd>/<device>/<batch>.shard`, which the
/// aggregator's PCA reads; projected codes to
/// `codes/v<projection>/<yyyy-mm-dd>/<device>/<batch>.shard`, which it does not.
/// The date is the shard's own creation date, so a retry on another day maps to the
/// same key. `projection_k` is the width of the published projection the shard's
/// codes claim to come from (`None` when that version was never published for this
/// model): codes of any other width are refused.
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
    if h.model_id != policy.model_id {
        return Err(wrong());
    }
    let codes_of = match h.encoding {
        Encoding::F32 | Encoding::F16 if h.dim == policy.dim => None,
        Encoding::ProjectedF16 { projection_version } if projection_k == Some(h.dim) => Some(projection_version),
        _ => return Err(wrong()),
    };
    if h.rows == 0 || h.rows > policy.max_rows {
        return Err(IngestError::Oversized(h.rows as usize));
    }
    let date = &crate::clock::iso8601(h.created_unix_ms)[..10];
    Ok(match codes_of {
        None => layout::incoming_key(date, device, batch_id),
        Some(version) => layout::codes_key(version, date, device, batch_id),
    })
}
