//! How a device signs its requests to ingest: the one definition shared by the
//! phone's uploader and the cloud's ingest service.
//!
//! ```text
//! HMAC-SHA256(secret, METHOD "\n" PATH "\n" hex(sha256(body)) "\n" TIMESTAMP_MS "\n" NONCE)
//! ```
//!
//! sent as headers [`H_DEVICE`], [`H_TIMESTAMP`] (Unix ms), [`H_NONCE`] (unique per
//! request), [`H_CONTENT_SHA256`] (hex sha256 of the body) and [`H_SIGNATURE`] (hex).
//! Because the body's hash travels in a header, the server authenticates a request
//! from its headers alone, before it reads a byte of the body, then checks the body it
//! streams against that hash. The server refuses timestamps outside a window around
//! its clock and any nonce it has seen, so a captured request cannot be replayed; a
//! retried upload is a new request (new nonce) for the same batch key.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Header carrying the device id.
pub const H_DEVICE: &str = "x-fruits-device";
/// Header carrying the timestamp, Unix milliseconds.
pub const H_TIMESTAMP: &str = "x-fruits-timestamp";
/// Header carrying the nonce.
pub const H_NONCE: &str = "x-fruits-nonce";
/// Header carrying the hex sha256 of the body, which the signature covers.
pub const H_CONTENT_SHA256: &str = "x-fruits-content-sha256";
/// Header carrying the hex HMAC.
pub const H_SIGNATURE: &str = "x-fruits-signature";

/// The hex sha256 of a body, as sent in [`H_CONTENT_SHA256`] and signed.
pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The string a device signs, given its body's hash ([`body_hash`]).
pub fn canonical(method: &str, path: &str, body_sha256_hex: &str, timestamp_ms: u64, nonce: &str) -> String {
    format!("{method}\n{path}\n{body_sha256_hex}\n{timestamp_ms}\n{nonce}")
}

fn mac(secret: &[u8], method: &str, path: &str, body_sha256_hex: &str, timestamp_ms: u64, nonce: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(canonical(method, path, body_sha256_hex, timestamp_ms, nonce).as_bytes());
    mac
}

/// The hex HMAC-SHA256 of the canonical string of a request with `body` under `secret`.
pub fn sign(secret: &[u8], method: &str, path: &str, body: &[u8], timestamp_ms: u64, nonce: &str) -> String {
    sign_hashed(secret, method, path, &body_hash(body), timestamp_ms, nonce)
}

/// [`sign`], given the body's hash instead of the body.
pub fn sign_hashed(
    secret: &[u8],
    method: &str,
    path: &str,
    body_sha256_hex: &str,
    timestamp_ms: u64,
    nonce: &str,
) -> String {
    hex::encode(mac(secret, method, path, body_sha256_hex, timestamp_ms, nonce).finalize().into_bytes())
}

/// The parts of a request the signature covers, the body by its hash.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The request path.
    pub path: &'a str,
    /// Hex sha256 of the body, as claimed in [`H_CONTENT_SHA256`].
    pub body_sha256_hex: &'a str,
    /// Unix milliseconds, as claimed in [`H_TIMESTAMP`].
    pub timestamp_ms: u64,
    /// As sent in [`H_NONCE`].
    pub nonce: &'a str,
}

/// Whether `signature_hex` is the HMAC of the request, compared in constant time.
pub fn verify(secret: &[u8], request: Signed<'_>, signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else { return false };
    let Signed { method, path, body_sha256_hex, timestamp_ms, nonce } = request;
    mac(secret, method, path, body_sha256_hex, timestamp_ms, nonce).verify_slice(&signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::batch_path;

    #[test]
    fn signatures_bind_every_part_of_the_request() {
        let (path, other) = (batch_path("b1"), batch_path("b2"));
        let s = sign(b"k", "PUT", &path, b"body", 5, "n1");
        let hash = body_hash(b"body");
        let req = Signed { method: "PUT", path: &path, body_sha256_hex: &hash, timestamp_ms: 5, nonce: "n1" };
        assert!(verify(b"k", req, &s));
        assert!(!verify(b"other", req, &s));
        assert!(!verify(b"k", Signed { method: "GET", ..req }, &s));
        assert!(!verify(b"k", Signed { path: &other, ..req }, &s));
        assert!(!verify(b"k", Signed { body_sha256_hex: &body_hash(b"bodY"), ..req }, &s));
        assert!(!verify(b"k", Signed { timestamp_ms: 6, ..req }, &s));
        assert!(!verify(b"k", Signed { nonce: "n2", ..req }, &s));
        assert!(!verify(b"k", req, "zz"));
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 2104 HMAC-SHA256 of "PUT\n/v\n<sha256('')>\n1\nn" under key "k", computed
        // independently with Python's hmac module.
        let expected = "2f6b1493479153287bdfc018a84cc584b7fa0302ce1f436c5c35c54b95632c73";
        assert_eq!(sign(b"k", "PUT", "/v", b"", 1, "n"), expected);
    }
}
