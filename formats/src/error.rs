//! Typed errors for every way a stored or uploaded object can be wrong.

/// Why bytes could not be turned into a shard, sketch or artifact.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// Fewer bytes than the fixed-size frame around the body.
    #[error("truncated: {actual} bytes, at least {needed} needed")]
    Truncated { needed: u64, actual: u64 },
    /// The first eight bytes are not this kind of object.
    #[error("bad magic: expected {expected:?}, found {found:?}")]
    BadMagic { expected: String, found: String },
    /// A format version this build cannot read.
    #[error("unsupported {kind} format version {found} (this build reads {supported})")]
    UnsupportedVersion { kind: &'static str, found: u16, supported: u16 },
    /// A declared size or count is over its hard limit.
    #[error("{what} = {value} exceeds the limit of {limit}")]
    LimitExceeded { what: &'static str, value: u64, limit: u64 },
    /// The declared sizes do not add up to the real length of the bytes.
    #[error("length mismatch: header declares {declared} bytes, object has {actual}")]
    LengthMismatch { declared: u64, actual: u64 },
    /// The trailing checksum does not match the content.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },
    /// The structured header or body could not be decoded.
    #[error("malformed {kind}: {reason}")]
    Malformed { kind: &'static str, reason: String },
    /// A value is NaN or infinite.
    #[error("non-finite value at row {row}, column {col}")]
    NonFinite { row: u32, col: u32 },
    /// Fields that must agree with each other do not.
    #[error("inconsistent {kind}: {reason}")]
    Inconsistent { kind: &'static str, reason: String },
}
