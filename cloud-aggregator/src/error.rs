//! The error of the aggregator's steps over storage ([`pipeline`](crate::pipeline),
//! [`run`](crate::run), [`report`](crate::report), [`inspect`](crate::inspect)): one enum a
//! caller can match, "storage down" apart from "corrupt object" apart from "nothing to do".

use crate::report::png::DrawError;
use fruits_formats::FormatError;
use fruits_pca::finalize::FinalizeError;
use fruits_pca::sketch::SketchError;
use std::io;

/// Why a step of the aggregator failed.
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    /// Reading, writing or listing storage failed.
    #[error("{what}: {source}")]
    Storage {
        /// What was being done, with the key.
        what: String,
        /// The storage's error.
        #[source]
        source: io::Error,
    },
    /// A stored object (sketch, artifact) could not be decoded.
    #[error("{what}: {source}")]
    Format {
        /// Which object.
        what: String,
        /// Why.
        #[source]
        source: FormatError,
    },
    /// The published `latest.json` is not what the aggregator writes.
    #[error("the published latest.json: {0}")]
    Latest(String),
    /// Sketches that cannot be merged (another model or dimension).
    #[error(transparent)]
    Sketch(#[from] SketchError),
    /// The PCA could not be finalised.
    #[error(transparent)]
    Finalize(#[from] FinalizeError),
    /// Every shard was refused (their reasons are in the run's report).
    #[error("no shard was accepted")]
    NoShardAccepted,
    /// A merge was given no sketch.
    #[error("no sketches to merge")]
    NoSketches,
    /// An object of no known kind.
    #[error("unknown object: magic {0:?}")]
    UnknownObject(String),
    /// A chart could not be drawn.
    #[error(transparent)]
    Draw(#[from] DrawError),
    /// A report or manifest could not be serialised.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl AggregatorError {
    /// A storage error while doing `what`, for `map_err`.
    pub fn storage(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Storage { what: what.into(), source }
    }

    /// A decoding error of the object `what`, for `map_err`.
    pub fn format(what: impl Into<String>) -> impl FnOnce(FormatError) -> Self {
        move |source| Self::Format { what: what.into(), source }
    }
}
