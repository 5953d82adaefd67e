//! The one error type of the embedding engine.
//!
//! Every fallible entry point returns [`EmbedError`]; no input (bytes, model,
//! manifest) makes the engine panic.

use std::path::PathBuf;

/// Convenience alias for results of this crate.
pub type Result<T, E = EmbedError> = std::result::Result<T, E>;

/// Everything that can go wrong between photo bytes and an embedding. Exhaustive on
/// purpose: the SDK maps every variant onto its public error by name, so a new variant
/// does not compile until it is mapped.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The input held zero bytes.
    #[error("input is empty (0 bytes)")]
    EmptyInput,

    /// The bytes do not start with the signature of any image format we know.
    #[error("not a recognised image (first bytes {head})")]
    UnknownFormat {
        /// Hex of the first few bytes, for diagnostics.
        head: String,
    },

    /// The bytes are a recognised image format that this engine does not decode
    /// (for example TIFF or HEIC: convert to JPEG first).
    #[error("unsupported image format {format}; supported: JPEG, PNG, WebP, GIF, BMP")]
    UnsupportedFormat {
        /// Name of the detected format.
        format: &'static str,
    },

    /// The image header or data is malformed or truncated.
    #[error("cannot decode {format} image: {message}")]
    Decode {
        /// Detected container format.
        format: &'static str,
        /// Decoder message.
        message: String,
    },

    /// The header declares more pixels than allowed; refused before any pixel
    /// buffer is allocated (decompression-bomb guard).
    #[error("image is {width}x{height}, more than the limit of {limit} pixels")]
    ImageTooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Maximum number of pixels accepted.
        limit: u64,
    },

    /// The full-size decoded buffer the header declares (16-bit and alpha channels
    /// counted) is over the byte budget; refused before any pixel buffer is allocated.
    #[error("image is {width}x{height}, {bytes} bytes decoded, more than the limit of {limit} bytes")]
    DecodedTooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Bytes of the full-size decoded buffer.
        bytes: u64,
        /// Maximum number of bytes accepted.
        limit: u64,
    },

    /// The frame cannot be a photo: its short side is under 32 pixels or its long side is
    /// more than 20 times the short one (`preprocess::MIN_SHORT_SIDE`, `MAX_ASPECT_RATIO`).
    #[error("a {width}x{height} image is no usable photo (short side at least 32 pixels, aspect at most 1:20)")]
    NotAPhoto {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },

    /// The model file's sha256 differs from the manifest's.
    #[error("model checksum mismatch: manifest expects {expected}, file has {actual}")]
    ModelChecksumMismatch {
        /// sha256 declared by the manifest.
        expected: String,
        /// sha256 of the bytes actually loaded.
        actual: String,
    },

    /// The manifest cannot be parsed or states an impossible contract.
    #[error("invalid model manifest: {0}")]
    ManifestInvalid(String),

    /// The model's declared inputs/outputs disagree with the manifest.
    #[error("model does not match its manifest: {0}")]
    ModelShapeMismatch(String),

    /// A tensor handed to the embedder has the wrong shape or length.
    #[error("tensor shape {actual:?} does not match the model input {expected:?}")]
    TensorShape {
        /// Shape the model expects (one image, without batch).
        expected: Vec<usize>,
        /// Shape received.
        actual: Vec<usize>,
    },

    /// The model could not be parsed, optimised or run.
    #[error("inference failed: {0}")]
    Inference(String),

    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl EmbedError {
    /// Short stable machine-readable name of the variant (for logs and JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EmptyInput => "empty_input",
            Self::UnknownFormat { .. } => "unknown_format",
            Self::UnsupportedFormat { .. } => "unsupported_format",
            Self::Decode { .. } => "decode",
            Self::ImageTooLarge { .. } => "image_too_large",
            Self::DecodedTooLarge { .. } => "decoded_too_large",
            Self::NotAPhoto { .. } => "not_a_photo",
            Self::ModelChecksumMismatch { .. } => "model_checksum_mismatch",
            Self::ManifestInvalid(_) => "manifest_invalid",
            Self::ModelShapeMismatch(_) => "model_shape_mismatch",
            Self::TensorShape { .. } => "tensor_shape",
            Self::Inference(_) => "inference",
            Self::Io { .. } => "io",
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
