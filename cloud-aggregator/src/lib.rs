//! The Fruits cloud aggregator: embedding shards merged into an exact, mergeable
//! PCA sketch (the `fruits-pca` crate: scatter, sketch, eigensolvers, finalize),
//! finalised into a projection artifact with a recognition head (the `fruits-head`
//! crate: training and calibration), and published.
//!
//! * Pure logic, no I/O: [`catalogue`], [`validate`], [`inspect`], [`synth`], [`clock`],
//!   [`estimate`] (the monthly AWS cost model).
//! * I/O: [`storage`] (the `Storage` trait and its local-directory backend), [`s3`]
//!   (the S3 backend), [`storage_url`] (directory or `s3://` locations), [`signing`]
//!   (the publisher's Ed25519 key files), [`ingest`] (the phones' upload and sync
//!   service; its [`ingest::auth`] and [`ingest::check`] are pure),
//!   [`pipeline`] (sketch / merge / publish steps over storage), [`report`] (the
//!   PCA and recognition pictures), [`run`] (the whole
//!   job and its report).
//! * [`error`]: the one error of the steps over storage.
//!
//! The `aggregator` command line (clap, anyhow) is the binary's, not this library's.

// No panic reachable from input or from another request's failure (tests exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub use error::AggregatorError;

pub mod catalogue;
pub mod clock;
pub mod error;
pub mod estimate;
pub mod ingest;
pub mod inspect;
pub mod pipeline;
pub mod report;
pub mod run;
pub mod s3;
pub mod signing;
pub mod storage;
pub mod storage_url;
pub mod synth;
pub mod validate;
