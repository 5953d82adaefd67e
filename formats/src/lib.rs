//! The one definition of every format that crosses the phone/cloud boundary.
//!
//! * [`shard`]: a batch of embeddings from one device, as uploaded by phones and read
//!   by the aggregator, and the one [`ShardBuilder`] that makes them.
//! * [`artifact`]: the projection (PCA mean and components) the aggregator publishes
//!   and phones apply.
//! * [`head`]: the recognition head (a calibrated linear classifier over PCA codes,
//!   unit-length codes since artifact format 3)
//!   published inside the artifact.
//! * [`catalogue`]: the fruit information (names, nutrition) published with the head.
//! * [`request_auth`]: how a device signs its uploads (HMAC), for uploader and ingest.
//! * [`signed`]: the Ed25519-signed `latest.json` manifest and the one verifier
//!   phones and cloud share.
//! * [`layout`]: where each of them lives: the storage keys and HTTP routes.
//!
//! Both are framed by [`codec`], the only module that knows about bincode. This crate
//! does no I/O: it turns bytes into values and back, with hard limits checked before
//! anything is allocated, so hostile input costs nothing but a typed error.

// No panic reachable from input or from another request's failure (tests exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod artifact;
pub mod catalogue;
pub mod codec;
pub mod error;
pub mod head;
pub mod layout;
pub mod model_id;
pub mod request_auth;
pub mod shard;
pub mod signed;

pub use artifact::ProjectionArtifact;
pub use catalogue::{FruitInfo, Nutrition};
pub use error::FormatError;
pub use head::{HeadError, HeadInput, Prediction, RecognitionHead};
pub use model_id::ModelId;
pub use shard::{Encoding, Shard, ShardBuilder, ShardHeader, ShardView};
pub use signed::{ProjectionManifest, VerifyError, sign_artifact, verify_published};

/// Cases per fuzz property: `default`, or `FRUITS_FUZZ_CASES` for a longer run.
#[cfg(test)]
pub(crate) fn fuzz_cases(default: u32) -> u32 {
    std::env::var("FRUITS_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
