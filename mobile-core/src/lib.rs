//! Fruits on-device embedding engine.
//!
//! Photo bytes (JPEG, PNG, WebP, GIF, BMP) -> decoded, upright, composited on
//! white, centre-cropped and resized -> MobileNetV2 (tract) -> 1280-d embedding.
//! The input contract (layout, size, normalisation) comes from the model's
//! manifest ([`ModelManifest`]), never from constants.
//!
//! ```no_run
//! use fruits_core::{Embedder, EmbedderOptions};
//! let embedder = Embedder::from_manifest_path(
//!     "models/mobilenetv2-1.0-224-embed.json".as_ref(),
//!     EmbedderOptions::default(),
//! )?;
//! let embedding = embedder.embed(&std::fs::read("samples/banana.png").unwrap())?;
//! assert_eq!(embedding.len(), 1280);
//! # Ok::<(), fruits_core::EmbedError>(())
//! ```

// No panic reachable from input or from another request's failure (tests exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod client;
pub mod embedder;
pub mod error;
pub mod header;
pub mod kernels;
pub mod manifest;
mod plan_cache;
pub mod preprocess;
pub mod queue;
pub mod recognizer;
pub mod similarity;
pub mod sync;
pub mod taught;
pub mod uploader;

pub use embedder::{Embedder, EmbedderOptions, PlanOrigin};
pub use error::{EmbedError, Result};
pub use header::{HeaderInfo, IMAGE_EXTENSIONS, ImageFormat, has_image_extension};
pub use manifest::{
    ChannelOrder, InputSpec, Layout, ModelManifest, Normalization, OutputSpec, Precision, Quantization,
};
pub use preprocess::{InputTensor, PreprocessOptions, Preprocessor};
pub use similarity::{cosine_similarity, l2_normalize, l2_normalized};
