//! Replay and rate defences for ingest (pure: no I/O, the clock is a parameter).
//!
//! The request signature itself (HMAC-SHA256 over method, path, body hash,
//! timestamp and nonce) is defined once, for phones and cloud alike, in
//! [`fruits_formats::request_auth`]. This module adds what only the server keeps:
//! the nonces seen within the replay window ([`NonceCache`]) and a per-device
//! token bucket ([`RateLimiter`]).

pub use fruits_formats::request_auth::{
    H_CONTENT_SHA256, H_DEVICE, H_NONCE, H_SIGNATURE, H_TIMESTAMP, Signed, body_hash, sign, sign_hashed, verify,
};
use std::collections::{HashMap, VecDeque};

/// Nonces seen within the replay window, per device, bounded in memory.
#[derive(Debug, Default)]
pub struct NonceCache {
    seen: HashMap<(String, String), u64>,
    order: VecDeque<(u64, String, String)>,
}

impl NonceCache {
    /// Records `(device, nonce)` at `now_ms`; `false` if it was already seen.
    /// Entries older than `window_ms` are forgotten (their timestamps are refused
    /// by the window check anyway).
    pub fn check_and_insert(&mut self, device: &str, nonce: &str, now_ms: u64, window_ms: u64) -> bool {
        let horizon = now_ms.saturating_sub(window_ms.saturating_mul(2));
        while let Some((_, d, n)) = self.order.pop_front_if(|(t, _, _)| *t < horizon) {
            self.seen.remove(&(d, n));
        }
        let key = (device.to_owned(), nonce.to_owned());
        if self.seen.contains_key(&key) {
            return false;
        }
        self.seen.insert(key, now_ms);
        self.order.push_back((now_ms, device.to_owned(), nonce.to_owned()));
        true
    }
}

/// A per-device token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: HashMap<String, (f64, u64)>,
}

impl RateLimiter {
    /// Takes one token for `device` at `now_ms`; `false` when its bucket is empty.
    pub fn allow(&mut self, device: &str, now_ms: u64, per_second: f64, burst: f64) -> bool {
        let (tokens, last) = self.buckets.entry(device.to_owned()).or_insert((burst, now_ms));
        *tokens = (*tokens + now_ms.saturating_sub(*last) as f64 / 1000.0 * per_second).min(burst);
        *last = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_refused_twice_within_the_window_and_forgotten_after() {
        let mut c = NonceCache::default();
        assert!(c.check_and_insert("d", "n", 0, 1000));
        assert!(!c.check_and_insert("d", "n", 500, 1000));
        assert!(c.check_and_insert("e", "n", 500, 1000));
        assert!(c.check_and_insert("d", "n", 2501, 1000));
    }

    #[test]
    fn rate_limiter_allows_a_burst_then_refills() {
        let mut r = RateLimiter::default();
        assert!((0..3).all(|_| r.allow("d", 0, 1.0, 3.0)));
        assert!(!r.allow("d", 0, 1.0, 3.0));
        assert!(r.allow("other", 0, 1.0, 3.0));
        assert!(r.allow("d", 1000, 1.0, 3.0));
    }
}
