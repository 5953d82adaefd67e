//! The recognition head: what replaces MobileNetV2's softmax layer.
//!
//! A linear classifier over the PCA codes of the artifact that carries it: `logits =
//! W x + b`, where `x` is the codes as they are ([`HeadInput::Codes`], artifact format 2)
//! or scaled to unit length ([`HeadInput::UnitCodes`], what the aggregator trains since
//! format 3: a cosine geometry, which transfers better to photos the head never saw),
//! turned into probabilities by a softmax at a calibrated temperature `T`
//! (`softmax(logits / T)`). When the largest probability is below
//! [`RecognitionHead::unknown_threshold`] the answer is "unknown". Pure: no I/O, no
//! allocation beyond the output, and every entry point checks its input.

use crate::error::FormatError;
use crate::shard::{MAX_LABEL_LEN, MAX_LABELS};
use serde::{Deserialize, Serialize};

/// Most classes a head may have (the shards' label vocabulary limit).
pub const MAX_CLASSES: usize = MAX_LABELS;
/// Smallest accepted temperature: below it the softmax is a hard arg-max in `f32`.
pub const MIN_TEMPERATURE: f32 = 1e-3;
/// Largest accepted temperature.
pub const MAX_TEMPERATURE: f32 = 1e3;

/// What a head's weights multiply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeadInput {
    /// The PCA codes as they are (every head of artifact format 2).
    Codes,
    /// The PCA codes divided by their Euclidean norm (all zeros stay zeros).
    UnitCodes,
}

impl HeadInput {
    /// `codes` as this head reads them.
    pub fn prepare(self, codes: &[f32]) -> Vec<f32> {
        match self {
            HeadInput::Codes => codes.to_vec(),
            HeadInput::UnitCodes => unit(codes),
        }
    }
}

/// `v / |v|` (norm summed in `f64`); a zero vector stays zero.
pub fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if norm > 0.0 { v.iter().map(|x| (f64::from(*x) / norm) as f32).collect() } else { v.to_vec() }
}

/// A multinomial linear classifier over PCA codes, with its calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecognitionHead {
    /// Class labels (the Fruits-360 folder names), one per output, distinct.
    pub classes: Vec<String>,
    /// Input size: the number of PCA codes, the artifact's `k`.
    pub input_dim: u32,
    /// How the codes are prepared before the weights apply.
    pub input: HeadInput,
    /// Weights, `classes x input_dim`, row-major.
    pub weights: Vec<f32>,
    /// Bias, one per class.
    pub bias: Vec<f32>,
    /// Softmax temperature fitted on held-out rows (`> 0`; 1 means uncalibrated).
    pub temperature: f32,
    /// Below this calibrated top probability the answer is "unknown" (in `[0, 1]`).
    pub unknown_threshold: f32,
}

/// Why a head cannot score an input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeadError {
    /// The input does not have `input_dim` values.
    #[error("input has {found} values, the head expects {expected}")]
    WrongDimension {
        /// The head's input size.
        expected: usize,
        /// The input's size.
        found: usize,
    },
    /// The input holds NaN or an infinity.
    #[error("input value {index} is not finite")]
    NonFinite {
        /// Position of the first bad value.
        index: usize,
    },
}

/// The head's answer for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Index of the most probable class, `None` when its probability is below the
    /// unknown threshold.
    pub class: Option<usize>,
    /// Index of the most probable class, known or not.
    pub best: usize,
    /// Calibrated probability of `best`.
    pub confidence: f32,
    /// Calibrated probability of every class, in class order (sums to 1).
    pub probabilities: Vec<f32>,
}

impl RecognitionHead {
    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// Raw scores `W x + b`, one per class, `x` the codes as [`Self::input`] prepares them.
    pub fn logits(&self, codes: &[f32]) -> Result<Vec<f32>, HeadError> {
        let d = self.input_dim as usize;
        if codes.len() != d {
            return Err(HeadError::WrongDimension { expected: d, found: codes.len() });
        }
        if let Some(index) = codes.iter().position(|v| !v.is_finite()) {
            return Err(HeadError::NonFinite { index });
        }
        let x = self.input.prepare(codes);
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(HeadError::NonFinite { index });
        }
        Ok(self.weights.chunks_exact(d).zip(&self.bias).map(|(w, b)| b + dot(w, &x)).collect())
    }

    /// Calibrated class probabilities, `softmax(logits / temperature)`.
    pub fn probabilities(&self, codes: &[f32]) -> Result<Vec<f32>, HeadError> {
        Ok(softmax(&self.logits(codes)?, self.temperature))
    }

    /// The most probable class, its calibrated probability, and "unknown" below
    /// the threshold.
    pub fn predict(&self, codes: &[f32]) -> Result<Prediction, HeadError> {
        let probabilities = self.probabilities(codes)?;
        let (best, confidence) = probabilities
            .iter()
            .copied()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |acc, (i, p)| if p > acc.1 { (i, p) } else { acc });
        let class = (confidence >= self.unknown_threshold).then_some(best);
        Ok(Prediction { class, best, confidence, probabilities })
    }

    /// Checks sizes, limits, distinct non-empty labels and finite numbers.
    pub fn validate(&self) -> Result<(), FormatError> {
        let bad = |reason: String| Err(FormatError::Inconsistent { kind: "recognition head", reason });
        let c = self.classes.len();
        if !(2..=MAX_CLASSES).contains(&c) {
            return bad(format!("{c} classes, expected 2 to {MAX_CLASSES}"));
        }
        if let Some(label) = self.classes.iter().find(|l| l.is_empty() || l.len() > MAX_LABEL_LEN) {
            return bad(format!("class label {label:?} is empty or longer than {MAX_LABEL_LEN} bytes"));
        }
        let mut sorted: Vec<&String> = self.classes.iter().collect();
        sorted.sort();
        if let Some(pair) = sorted.windows(2).find(|p| p[0] == p[1]) {
            return bad(format!("class {:?} appears twice", pair[0]));
        }
        let d = self.input_dim as usize;
        if d == 0 || self.weights.len() != c * d || self.bias.len() != c {
            return bad(format!(
                "input_dim {d}: {} weights and {} biases for {c} classes",
                self.weights.len(),
                self.bias.len()
            ));
        }
        if !self.weights.iter().chain(&self.bias).all(|v| v.is_finite()) {
            return bad("non-finite weight or bias".into());
        }
        if !(MIN_TEMPERATURE..=MAX_TEMPERATURE).contains(&self.temperature) {
            return bad(format!("temperature {} outside [{MIN_TEMPERATURE}, {MAX_TEMPERATURE}]", self.temperature));
        }
        if !(0.0..=1.0).contains(&self.unknown_threshold) {
            return bad(format!("unknown threshold {} outside [0, 1]", self.unknown_threshold));
        }
        Ok(())
    }
}

/// `w . x`, summed in `f64`.
pub fn dot(w: &[f32], x: &[f32]) -> f32 {
    w.iter().zip(x).map(|(w, x)| f64::from(*w) * f64::from(*x)).sum::<f64>() as f32
}

/// `softmax(logits / temperature)`, computed stably (max subtracted, `f64` sums).
pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let t = f64::from(temperature);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| ((f64::from(l) - f64::from(max)) / t).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two classes on a 2-d input: "apple" when x0 > x1, else "pear".
    pub(crate) fn two_classes() -> RecognitionHead {
        RecognitionHead {
            classes: vec!["Apple".into(), "Pear".into()],
            input_dim: 2,
            input: HeadInput::Codes,
            weights: vec![1.0, -1.0, -1.0, 1.0],
            bias: vec![0.0, 0.0],
            temperature: 1.0,
            unknown_threshold: 0.8,
        }
    }

    #[test]
    fn predicts_the_larger_score_and_unknown_near_the_boundary() {
        let head = two_classes();
        let p = head.predict(&[3.0, 0.0]).unwrap();
        assert_eq!((p.class, p.best), (Some(0), 0));
        assert!((p.confidence - 1.0 / (1.0 + (-6.0f32).exp())).abs() < 1e-6);
        assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let near = head.predict(&[0.1, 0.0]).unwrap();
        assert_eq!((near.class, near.best), (None, 0));
    }

    #[test]
    fn temperature_softens_without_changing_the_order() {
        let mut head = two_classes();
        let sharp = head.predict(&[1.0, 0.0]).unwrap().confidence;
        head.temperature = 4.0;
        let soft = head.predict(&[1.0, 0.0]).unwrap();
        assert_eq!(soft.best, 0);
        assert!(soft.confidence < sharp && soft.confidence > 0.5);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let head = two_classes();
        assert_eq!(head.predict(&[1.0]).unwrap_err(), HeadError::WrongDimension { expected: 2, found: 1 });
        assert_eq!(head.predict(&[1.0, f32::NAN]).unwrap_err(), HeadError::NonFinite { index: 1 });
        let huge = softmax(&[1e30, -1e30], 1.0);
        assert_eq!(huge, vec![1.0, 0.0]);
    }

    #[test]
    fn unit_codes_ignore_the_codes_length() {
        let head = RecognitionHead { input: HeadInput::UnitCodes, ..two_classes() };
        let near = head.predict(&[3.0, 1.0]).unwrap();
        let far = head.predict(&[300.0, 100.0]).unwrap();
        assert_eq!(near, far);
        assert!((head.logits(&[3.0, 4.0]).unwrap()[0] - (-0.2)).abs() < 1e-6);
        assert_eq!(head.logits(&[0.0, 0.0]).unwrap(), vec![0.0, 0.0], "zero codes keep the bias");
        assert_eq!(head.predict(&[f32::MAX, f32::MAX]).unwrap().best, 0, "no overflow through the norm");
    }

    #[test]
    fn inconsistent_heads_are_refused() {
        assert!(two_classes().validate().is_ok());
        let broken: [fn(&mut RecognitionHead); 7] = [
            |h| {
                h.weights.pop();
            },
            |h| h.bias[1] = f32::INFINITY,
            |h| h.classes[1] = "Apple".into(),
            |h| h.classes[0].clear(),
            |h| h.temperature = 0.0,
            |h| h.unknown_threshold = 1.5,
            |h| {
                h.classes.truncate(1);
                h.weights.truncate(2);
                h.bias.truncate(1);
            },
        ];
        for (i, breaks) in broken.iter().enumerate() {
            let mut head = two_classes();
            breaks(&mut head);
            assert!(head.validate().is_err(), "case {i}");
        }
    }
}
