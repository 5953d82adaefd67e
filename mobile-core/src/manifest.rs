//! The model manifest: the input/output contract of an ONNX embedding model.
//!
//! The manifest is a JSON file next to the model (`<model>.json`). Code reads the
//! preprocessing contract from it and never from constants, so another
//! MobileNetV2 export (NCHW, ImageNet mean/std, ...) only needs a new manifest.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EmbedError, Result};

/// Largest input side accepted in a manifest (guards against absurd contracts).
const MAX_INPUT_SIDE: u32 = 4096;

/// Memory layout of the model's image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// `[N, H, W, C]` (TensorFlow/Keras exports).
    #[serde(rename = "NHWC")]
    Nhwc,
    /// `[N, C, H, W]` (PyTorch exports, ONNX model zoo).
    #[serde(rename = "NCHW")]
    Nchw,
}

/// Order of the colour channels the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelOrder {
    /// Red, green, blue.
    #[serde(rename = "RGB")]
    Rgb,
    /// Blue, green, red (Caffe-style exports).
    #[serde(rename = "BGR")]
    Bgr,
}

/// Per-channel affine normalisation: `value = pixel * scale[c] + offset[c]`,
/// with `pixel` in 0..=255 and `c` in the model's channel order.
///
/// `x / 127.5 - 1` is scale `1/127.5`, offset `-1`; ImageNet mean/std is
/// scale `1 / (255 * std[c])`, offset `-mean[c] / std[c]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Multiplier per channel.
    pub scale: Vec<f32>,
    /// Added after scaling, per channel.
    pub offset: Vec<f32>,
}

/// Contract of the image input tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Name of the graph input.
    pub name: String,
    /// Tensor layout.
    pub layout: Layout,
    /// Input height in pixels.
    pub height: u32,
    /// Input width in pixels.
    pub width: u32,
    /// Number of channels (must be 3).
    pub channels: u32,
    /// Channel order.
    pub channel_order: ChannelOrder,
    /// Pixel normalisation.
    pub normalization: Normalization,
}

impl InputSpec {
    /// Shape of one image (no batch axis) in this spec's layout.
    pub fn image_shape(&self) -> [usize; 3] {
        let (h, w, c) = (self.height as usize, self.width as usize, self.channels as usize);
        match self.layout {
            Layout::Nhwc => [h, w, c],
            Layout::Nchw => [c, h, w],
        }
    }

    /// Number of `f32` values in one image tensor.
    pub fn image_len(&self) -> usize {
        self.image_shape().iter().product()
    }
}

/// Contract of the embedding output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// Name of the graph output.
    pub name: String,
    /// Embedding dimension (the output is `[N, dim]`).
    pub dim: u32,
}

/// A model manifest (`models/<model>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Manifest schema version (currently 1).
    pub schema: u32,
    /// Human-readable model name, e.g. `mobilenetv2-1.0-224-embed`.
    pub name: String,
    /// Model file name, relative to the manifest's directory.
    pub file: String,
    /// Lowercase hex sha256 of the model file; this is the model id.
    pub sha256: String,
    /// ONNX opset the model was exported with.
    pub opset: u32,
    /// Image input contract.
    pub input: InputSpec,
    /// Embedding output contract.
    pub output: OutputSpec,
    /// The precision of the model's weights and activations (`f32` when absent).
    #[serde(default)]
    pub precision: Precision,
    /// How a quantised model was made from a float one (provenance; absent for `f32`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantization>,
}

/// The arithmetic a model was exported for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats throughout.
    #[default]
    F32,
    /// 8-bit integer weights and activations (QDQ: quantise/dequantise pairs around the
    /// float operators).
    Int8,
}

/// Where a quantised model comes from, and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantization {
    /// The float model it was made from (`file`, `sha256`).
    pub from: std::collections::BTreeMap<String, String>,
    /// The quantisation scheme.
    pub format: String,
    /// The layers left in f32, and why, when some are.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kept_f32: String,
    /// What the ranges were calibrated on.
    pub calibration: String,
    /// The tools and their versions.
    pub tools: std::collections::BTreeMap<String, String>,
}

impl ModelManifest {
    /// Parses and validates a manifest from JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        let m: Self = serde_json::from_str(text).map_err(|e| EmbedError::ManifestInvalid(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// Reads, parses and validates a manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| EmbedError::io(path, e))?;
        Self::from_json(&text)
    }

    /// The model id: the lowercase hex sha256 of the model file.
    pub fn model_id(&self) -> &str {
        &self.sha256
    }

    /// Path of the model file given the manifest's own path.
    pub fn model_path(&self, manifest_path: &Path) -> PathBuf {
        manifest_path.parent().unwrap_or(Path::new(".")).join(&self.file)
    }

    /// Checks that the contract is self-consistent.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(EmbedError::ManifestInvalid(msg));
        if self.schema != 1 {
            return bad(format!("unsupported schema {}", self.schema));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return bad("sha256 must be 64 lowercase hex digits".into());
        }
        if self.file.is_empty() {
            return bad("file is empty".into());
        }
        let i = &self.input;
        if i.name.is_empty() || self.output.name.is_empty() {
            return bad("input and output names must be set".into());
        }
        if i.channels != 3 {
            return bad(format!("channels must be 3, got {}", i.channels));
        }
        for (what, v) in [("height", i.height), ("width", i.width)] {
            if v == 0 || v > MAX_INPUT_SIDE {
                return bad(format!("{what} {v} out of range 1..={MAX_INPUT_SIDE}"));
            }
        }
        let n = &i.normalization;
        if n.scale.len() != 3 || n.offset.len() != 3 {
            return bad("normalization needs 3 scales and 3 offsets".into());
        }
        if n.scale.iter().chain(&n.offset).any(|v| !v.is_finite()) || n.scale.contains(&0.0) {
            return bad("normalization values must be finite and scales non-zero".into());
        }
        if self.output.dim == 0 {
            return bad("output dim must be > 0".into());
        }
        Ok(())
    }

    /// Verifies that `model_bytes` hash to the manifest's sha256.
    pub fn verify_model_bytes(&self, model_bytes: &[u8]) -> Result<()> {
        let actual = sha256_hex(model_bytes);
        if actual != self.sha256 {
            return Err(EmbedError::ModelChecksumMismatch { expected: self.sha256.clone(), actual });
        }
        Ok(())
    }
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../models/mobilenetv2-1.0-224-embed.json");
    const SHIPPED_INT8: &str = include_str!("../../models/mobilenetv2-1.0-224-embed-int8.json");

    #[test]
    fn the_int8_manifest_states_its_precision_and_where_it_comes_from() {
        let f32 = ModelManifest::from_json(SHIPPED).unwrap();
        let int8 = ModelManifest::from_json(SHIPPED_INT8).unwrap();
        assert_eq!(f32.precision, Precision::F32, "no precision field means f32");
        assert_eq!(int8.precision, Precision::Int8);
        assert_eq!(int8.input, f32.input, "the same input contract");
        assert_eq!(int8.output, f32.output);
        assert_ne!(int8.model_id(), f32.model_id(), "each model its own id");
        let q = int8.quantization.expect("provenance");
        assert_eq!(q.from.get("sha256"), Some(&f32.sha256), "made from the shipped f32 model");
        let back =
            ModelManifest::from_json(&serde_json::to_string(&ModelManifest::from_json(SHIPPED_INT8).unwrap()).unwrap());
        assert_eq!(back.unwrap().precision, Precision::Int8, "round trip");
    }

    #[test]
    fn shipped_manifest_is_valid() {
        let m = ModelManifest::from_json(SHIPPED).unwrap();
        assert_eq!(m.input.image_shape(), [224, 224, 3]);
        assert_eq!(m.output.dim, 1280);
        assert_eq!(m.model_id(), m.sha256);
        // x / 127.5 - 1 maps 0 -> -1 and 255 -> 1.
        let n = &m.input.normalization;
        assert!((0.0 * n.scale[0] + n.offset[0] + 1.0).abs() < 1e-6);
        assert!((255.0 * n.scale[0] + n.offset[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn rejects_bad_contracts() {
        let good: serde_json::Value = serde_json::from_str(SHIPPED).unwrap();
        let cases: [(&str, serde_json::Value); 5] = [
            ("/input/channels", 4.into()),
            ("/input/height", 0.into()),
            ("/sha256", "abc".into()),
            ("/output/dim", 0.into()),
            ("/input/layout", "NHCW".into()),
        ];
        for (ptr, v) in cases {
            let mut m = good.clone();
            *m.pointer_mut(ptr).unwrap() = v;
            let err = ModelManifest::from_json(&m.to_string()).unwrap_err();
            assert!(matches!(err, EmbedError::ManifestInvalid(_)), "{ptr}: {err}");
        }
        let err = ModelManifest::from_json("{not json").unwrap_err();
        assert!(matches!(err, EmbedError::ManifestInvalid(_)));
    }

    #[test]
    fn checksum_mismatch_is_typed() {
        let m = ModelManifest::from_json(SHIPPED).unwrap();
        let err = m.verify_model_bytes(b"not the model").unwrap_err();
        assert!(matches!(err, EmbedError::ModelChecksumMismatch { .. }));
    }
}
