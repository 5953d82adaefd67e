//! Typed errors for every way a stored or uploaded object can be wrong.

/// Why bytes could not be turned into a shard, sketch or artifact.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// Fewer bytes than the fixed-size frame around the body.
    #[error("truncated: {actual} bytes, at least {needed} needed")]
    Truncated {
        /// The smallest valid length, in bytes.
        needed: u64,
        /// The length received, in bytes.
        actual: u64,
    },
    /// The first eight bytes are not this kind of object.
    #[error("bad magic: expected {expected:?}, found {found:?}")]
    BadMagic {
        /// The magic of the kind being read.
        expected: String,
        /// The first eight bytes received (lossy text).
        found: String,
    },
    /// A format version this build cannot read.
    #[error("unsupported {kind} format version {found} (this build reads {supported})")]
    UnsupportedVersion {
        /// The kind of object (`shard`, `sketch`, ...).
        kind: &'static str,
        /// The version the bytes declare.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// A declared size or count is over its hard limit.
    #[error("{what} = {value} exceeds the limit of {limit}")]
    LimitExceeded {
        /// The size or count over its limit.
        what: &'static str,
        /// Its declared value.
        value: u64,
        /// Its hard limit.
        limit: u64,
    },
    /// The declared sizes do not add up to the real length of the bytes.
    #[error("length mismatch: header declares {declared} bytes, object has {actual}")]
    LengthMismatch {
        /// The total length the header implies.
        declared: u64,
        /// The real length of the bytes.
        actual: u64,
    },
    /// The trailing checksum does not match the content.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The CRC-32 stored in the trailer.
        stored: u32,
        /// The CRC-32 of the content as received.
        computed: u32,
    },
    /// A value could not be encoded (bincode refused it).
    #[error("cannot encode {kind}: {reason}")]
    Unencodable {
        /// The kind of object.
        kind: &'static str,
        /// Why the encoder refused it.
        reason: String,
    },
    /// The structured header or body could not be decoded.
    #[error("malformed {kind}: {reason}")]
    Malformed {
        /// The kind of object.
        kind: &'static str,
        /// What could not be decoded.
        reason: String,
    },
    /// A value is NaN or infinite.
    #[error("non-finite value at row {row}, column {col}")]
    NonFinite {
        /// The row of the first bad value.
        row: u32,
        /// Its column.
        col: u32,
    },
    /// Fields that must agree with each other do not.
    #[error("inconsistent {kind}: {reason}")]
    Inconsistent {
        /// The kind of object.
        kind: &'static str,
        /// Which fields disagree.
        reason: String,
    },
}
