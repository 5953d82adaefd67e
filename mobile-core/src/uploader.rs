//! Uploading queued batches to the ingest service, signed per device, with
//! exponential backoff and jitter.
//!
//! Each request is signed with the device's HMAC secret over method, path,
//! sha256(body), timestamp and a fresh nonce ([`fruits_formats::request_auth`]), the
//! body's hash also sent as a header so that the server authenticates the request
//! before reading its body. A batch is removed from the [`UploadQueue`] only after the
//! server acknowledged it; a retry sends the same bytes under the same batch id, which
//! the server stores under the same key, so duplicates are stored once.
//!
//! The device's clock is corrected from the server's: when the server refuses a
//! timestamp (`stale_timestamp`), it sends its own time, and the uploader signs with
//! that offset from then on (one correction per upload). A `Retry-After` (ingest sends
//! one with 503 when busy or just restarted) replaces the backoff's delay, up to a minute.
//! Blocking HTTP, like [`crate::sync`]: call from a background thread.

use crate::queue::{Batch, QueueError, UploadQueue};
use fruits_formats::request_auth::{
    H_CONTENT_SHA256, H_DEVICE, H_NONCE, H_SIGNATURE, H_TIMESTAMP, body_hash, sign_hashed,
};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Retry schedule: attempt `n` (from 0) waits `min(max, base * 2^n)` scaled by a
/// random factor in `[0.5, 1.0]` ("equal jitter"), so devices that lost
/// connectivity together do not retry in lockstep.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First delay.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Attempts per batch before `flush` gives up (the batch stays queued).
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_millis(500), max: Duration::from_secs(60), attempts: 6 }
    }
}

impl Backoff {
    /// The delay before retry `attempt` for a jitter draw `unit` in `[0, 1)` (pure).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self.base.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)).min(self.max);
        exp.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }
}

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The device's identity towards ingest.
#[derive(Debug, Clone)]
pub struct UploaderConfig {
    /// Server root, e.g. `https://ingest.example.com`.
    pub server_url: String,
    /// The device id registered with ingest.
    pub device_id: String,
    /// Its HMAC secret.
    pub secret: Vec<u8>,
    /// Retry schedule.
    pub backoff: Backoff,
}

/// Why a flush stopped; queued batches stay queued.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The server refused the batch for good (4xx): code and detail as sent.
    #[error("batch {batch_id} refused ({status}): {body}")]
    Refused {
        /// The batch.
        batch_id: String,
        /// HTTP status.
        status: u16,
        /// The server's JSON error.
        body: String,
    },
    /// Network or server failures outlasted the retry schedule.
    #[error("batch {batch_id} not uploaded after {attempts} attempts: {last}")]
    GaveUp {
        /// The batch.
        batch_id: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(String),
    /// The queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Sends queued batches.
#[derive(Debug)]
pub struct Uploader {
    config: UploaderConfig,
    client: reqwest::blocking::Client,
    counter: AtomicU64,
    /// Server clock minus this device's, ms, learnt from a `stale_timestamp` answer.
    clock_offset_ms: AtomicI64,
}

/// One answer of the server to a PUT.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Its body (JSON for refusals).
    pub body: String,
    /// `Retry-After`, when sent.
    pub retry_after: Option<Duration>,
}

impl Answer {
    /// The refusal code of a JSON error body.
    fn code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        v.get("error")?.as_str().map(str::to_owned)
    }

    /// The server's clock, sent with every refusal.
    fn server_time_ms(&self) -> Option<u64> {
        let v: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        v.get("server_time_ms")?.as_u64()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Uploader {
    /// An uploader with 10 s connect and 60 s request timeouts.
    pub fn new(config: UploaderConfig) -> Result<Self, UploadError> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| UploadError::Client(e.to_string()))?;
        Ok(Self { config, client, counter: AtomicU64::new(0), clock_offset_ms: AtomicI64::new(0) })
    }

    fn nonce(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let seed = format!("{}|{nanos}|{n}|{}", self.config.device_id, std::process::id());
        hex::encode(&Sha256::digest(seed.as_bytes())[..16])
    }

    fn jitter(&self) -> f64 {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let h: [u8; 32] =
            Sha256::digest(format!("{nanos}|{}", self.counter.fetch_add(1, Ordering::Relaxed)).as_bytes()).into();
        let [a, b, c, d, ..] = h;
        u32::from_le_bytes([a, b, c, d]) as f64 / (u32::MAX as f64 + 1.0)
    }

    /// This device's clock corrected by the offset learnt from the server, Unix ms.
    fn timestamp_ms(&self) -> u64 {
        now_ms().saturating_add_signed(self.clock_offset_ms.load(Ordering::Relaxed))
    }

    /// One signed PUT of `shard` as `batch_id`: the server's answer, or a network error.
    pub fn put_batch(&self, batch_id: &str, shard: &[u8]) -> Result<Answer, String> {
        let path = fruits_formats::layout::batch_path(batch_id);
        let (ts, nonce, hash) = (self.timestamp_ms(), self.nonce(), body_hash(shard));
        let response = self
            .client
            .put(format!("{}{path}", self.config.server_url.trim_end_matches('/')))
            .header(H_DEVICE, &self.config.device_id)
            .header(H_TIMESTAMP, ts.to_string())
            .header(H_NONCE, &nonce)
            .header(H_SIGNATURE, sign_hashed(&self.config.secret, "PUT", &path, &hash, ts, &nonce))
            .header(H_CONTENT_SHA256, hash)
            .body(shard.to_vec())
            .send()
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Ok(Answer { status, body: response.text().unwrap_or_default(), retry_after })
    }

    /// Uploads one batch until the server stored it: network errors, 5xx, 408 and 429
    /// are retried with backoff (or after `Retry-After`); a refused timestamp once,
    /// at once, with the clock corrected from the server's; other 4xx stop at once with
    /// the server's code.
    pub fn upload(&self, batch: &Batch) -> Result<(), UploadError> {
        let (mut attempt, mut corrected) = (0, false);
        loop {
            let (last, wait) = match self.put_batch(&batch.batch_id, &batch.shard) {
                Ok(a) if (200..300).contains(&a.status) => return Ok(()),
                Ok(a) if a.status == 401 && !corrected && a.code().as_deref() == Some("stale_timestamp") => {
                    if let Some(server) = a.server_time_ms() {
                        let offset = i64::try_from(i128::from(server) - i128::from(now_ms())).unwrap_or(0);
                        self.clock_offset_ms.store(offset, Ordering::Relaxed);
                        tracing::info!(offset_ms = offset, "uploader: clock corrected from the server's");
                    }
                    corrected = true;
                    continue;
                }
                Ok(a) if (400..500).contains(&a.status) && a.status != 429 && a.status != 408 => {
                    return Err(UploadError::Refused {
                        batch_id: batch.batch_id.clone(),
                        status: a.status,
                        body: a.body,
                    });
                }
                Ok(a) => (format!("HTTP {}: {}", a.status, a.body), a.retry_after),
                Err(e) => (e, None),
            };
            attempt += 1;
            if attempt >= self.config.backoff.attempts {
                return Err(UploadError::GaveUp { batch_id: batch.batch_id.clone(), attempts: attempt, last });
            }
            let backoff = self.config.backoff.delay(attempt - 1, self.jitter());
            std::thread::sleep(wait.map_or(backoff, |w| w.min(MAX_RETRY_AFTER)));
        }
    }

    /// Uploads every queued batch, oldest first, acknowledging each in the queue
    /// once the server stored it; returns the number of batches uploaded.
    pub fn flush(&self, queue: &mut UploadQueue) -> Result<usize, UploadError> {
        let mut uploaded = 0;
        while let Some(batch) = queue.next_batch()? {
            self.upload(&batch)?;
            queue.ack(&batch)?;
            uploaded += 1;
        }
        Ok(uploaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let b = Backoff { base: Duration::from_millis(100), max: Duration::from_secs(1), attempts: 5 };
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(800));
        assert_eq!(b.delay(4, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(40, 0.5), Duration::from_millis(750));
    }
}
