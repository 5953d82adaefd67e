//! Which shards a run accepts, and the typed reason for refusing the others.

use fruits_formats::{Encoding, FormatError, ModelId, Shard, ShardHeader, ShardView};
use serde::{Deserialize, Serialize};

/// What every accepted shard must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The embedding model.
    pub model_id: ModelId,
    /// Values per embedding.
    pub dim: u32,
}

/// Why a shard was refused (it is quarantined, never silently dropped).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// The storage could not return its bytes.
    #[error("unreadable: {0}")]
    Unreadable(String),
    /// The bytes are not a valid shard: truncated, corrupted, oversized, non-finite...
    #[error("invalid shard: {0}")]
    Invalid(#[from] FormatError),
    /// Embeddings of another model.
    #[error("model {found} where {expected} was expected")]
    WrongModel {
        /// The run's model.
        expected: ModelId,
        /// The shard's model.
        found: ModelId,
    },
    /// Embeddings of another dimension.
    #[error("dimension {found} where {expected} was expected")]
    WrongDim {
        /// The run's dimension.
        expected: u32,
        /// The shard's dimension.
        found: u32,
    },
    /// Codes already projected, not full embeddings.
    #[error("projected codes (projection v{0}), not embeddings")]
    Projected(u32),
}

impl Rejection {
    /// A stable short name for counting and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Unreadable(_) => "unreadable",
            Rejection::Invalid(FormatError::NonFinite { .. }) => "non_finite",
            Rejection::Invalid(FormatError::Truncated { .. } | FormatError::LengthMismatch { .. }) => "truncated",
            Rejection::Invalid(FormatError::LimitExceeded { .. }) => "limit_exceeded",
            Rejection::Invalid(_) => "malformed",
            Rejection::WrongModel { .. } => "wrong_model",
            Rejection::WrongDim { .. } => "wrong_dim",
            Rejection::Projected(_) => "projected",
        }
    }
}

/// Decodes `bytes` (its values into `values`, see [`Shard::decode_into`]) and checks
/// it against `expected`.
pub fn check_shard(bytes: &[u8], expected: &Expected, values: Vec<f32>) -> Result<Shard, Rejection> {
    let shard = Shard::decode_into(bytes, values)?;
    check_header(shard.header(), expected)?;
    Ok(shard)
}

/// Parses `bytes` and checks its header against `expected`; the values are checked
/// as they are read ([`ShardView::rows_into`]).
pub fn check_view<'a>(bytes: &'a [u8], expected: &Expected) -> Result<ShardView<'a>, Rejection> {
    let view = ShardView::parse(bytes)?;
    check_header(view.header(), expected)?;
    Ok(view)
}

fn check_header(h: &ShardHeader, expected: &Expected) -> Result<(), Rejection> {
    if let Encoding::ProjectedF16 { projection_version } = h.encoding {
        return Err(Rejection::Projected(projection_version));
    }
    if h.model_id != expected.model_id {
        return Err(Rejection::WrongModel { expected: expected.model_id, found: h.model_id });
    }
    if h.dim != expected.dim {
        return Err(Rejection::WrongDim { expected: expected.dim, found: h.dim });
    }
    Ok(())
}

/// What a well-formed embedding shard's header promises, and its rows, if it is one
/// (frame, checksum, header and lengths checked; values are the sketch's to check).
pub fn expectation_of(bytes: &[u8]) -> Option<(Expected, u64)> {
    let h = ShardView::parse(bytes).ok()?.header().clone();
    let embeddings = matches!(h.encoding, Encoding::F32 | Encoding::F16);
    embeddings.then_some((Expected { model_id: h.model_id, dim: h.dim }, u64::from(h.rows)))
}
