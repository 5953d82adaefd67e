//! The Fruits SDK as apps see it: a thin [UniFFI](https://mozilla.github.io/uniffi-rs)
//! facade over [`fruits_core::client::FruitsClient`], exported to Kotlin (Android,
//! JVM), Swift (iOS) and Python (desktop) from one library, `fruits_ffi`.
//!
//! Nothing here computes: wrapper objects delegate in a line or two, records are
//! converted with `From`, ids cross as `String` and counts as `u32`, and every
//! internal error becomes one [`FruitsError`] variant in [`error`], the only place
//! that maps them. Every call that can fail returns `Result`, so apps catch a typed
//! exception (and a panic, with unwinding kept in every profile, becomes one too).
//! Nothing is `async`: inference is CPU-bound and uploads block; apps call the
//! client off their main thread.

// No panic reachable from input or from another request's failure (tests exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod client;
mod error;
mod recognition;
mod records;

pub use client::{FruitsClient, cosine_similarity};
pub use error::FruitsError;
pub use recognition::{Candidate, FruitInfo, Nutrition, Recognition, TaughtClass};
pub use records::{FlushReport, FruitsConfig, ModelSource, Status, SyncReport};

uniffi::setup_scaffolding!();
