//! Training the recognition head (pure: rows in, a calibrated head out).
//!
//! After the PCA, labelled embeddings are projected onto the `k` published
//! components and a [`logistic`] regression is fitted on a deterministic 80% of
//! them ([`heldout_mask`]); the other 20% fit the softmax temperature and the
//! "unknown" threshold ([`calibrate`]) and measure the accuracy. The same trainer
//! runs on any feature space, which is how the report compares heads at every `k`
//! and on the full 1280-d embeddings.

pub mod calibrate;
pub mod labelled;
pub mod lbfgs;
pub mod logistic;

pub use labelled::LabelledSet;

use fruits_formats::{FruitInfo, ProjectionArtifact, RecognitionHead};
use logistic::{Examples, LinearModel};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Training choices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadOptions {
    /// L2 penalty on standardised features.
    pub l2: f64,
    /// Share of rows held out for calibration and measurement, in percent.
    pub heldout_percent: u8,
    /// Share of correctly recognised held-out rows the unknown threshold keeps.
    pub known_recall: f64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        Self { l2: 1e-2, heldout_percent: 20, known_recall: 0.95 }
    }
}

/// Why no head could be trained.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeadTrainError {
    /// A classifier needs at least two classes among the training rows.
    #[error("{0} class(es) among the training rows; at least 2 are needed")]
    TooFewClasses(usize),
    /// Calibration needs held-out rows.
    #[error("no held-out rows to calibrate on ({rows} labelled rows)")]
    NoHeldOutRows {
        /// Labelled rows seen.
        rows: usize,
    },
    /// The features do not fit the labels.
    #[error("{features} feature values for {rows} rows of dimension {dim}")]
    Shape {
        /// Values given.
        features: usize,
        /// Rows (labels) given.
        rows: usize,
        /// Dimension given.
        dim: usize,
    },
    /// The labelled rows are not of the projection's dimension.
    #[error("labelled rows of dimension {rows} for a projection of dimension {projection}")]
    WrongDimension {
        /// The rows' dimension.
        rows: usize,
        /// The projection's.
        projection: u32,
    },
}

/// What training measured (written into `runs/<run>/` and `latest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadMetrics {
    /// Input features per row.
    pub input_dim: usize,
    /// Classes.
    pub classes: usize,
    /// Rows fitted.
    pub train_rows: usize,
    /// Rows held out.
    pub heldout_rows: usize,
    /// Top-1 accuracy on the held-out rows (arg-max, unknown or not).
    pub heldout_accuracy: f64,
    /// Share of held-out rows answered with a class (confidence at or above the threshold).
    pub heldout_known_rate: f64,
    /// Held-out negative log-likelihood before and after temperature scaling.
    pub heldout_nll_raw: f64,
    /// Held-out negative log-likelihood at the fitted temperature.
    pub heldout_nll_calibrated: f64,
    /// The fitted temperature.
    pub temperature: f32,
    /// The unknown threshold.
    pub unknown_threshold: f32,
    /// L-BFGS iterations.
    pub iterations: usize,
}

/// A calibrated head and what training measured.
#[derive(Debug, Clone)]
pub struct TrainedHead {
    /// The head, ready to publish.
    pub head: RecognitionHead,
    /// Its measurements.
    pub metrics: HeadMetrics,
}

/// `true` for the rows held out: a sha256 of each row's bytes, so the split depends
/// on the data only (not on shard order, devices or time) and is the same on rerun.
pub fn heldout_mask(rows: &[f32], dim: usize, percent: u8) -> Vec<bool> {
    rows.chunks_exact(dim)
        .map(|row| {
            let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
            let digest = Sha256::digest(&bytes);
            u16::from_le_bytes([digest[0], digest[1]]) % 100 < u16::from(percent)
        })
        .collect()
}

fn select<T: Copy>(values: &[T], width: usize, mask: &[bool], keep: bool) -> Vec<T> {
    values.chunks_exact(width).zip(mask).filter(|(_, m)| **m == keep).flat_map(|(v, _)| v.iter().copied()).collect()
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc }).0
}

/// Fits, calibrates and measures a head on `features` (`rows x dim`, any space).
pub fn train(
    features: &[f32],
    dim: usize,
    labels: &[u32],
    classes: &[String],
    heldout: &[bool],
    options: &HeadOptions,
) -> Result<TrainedHead, HeadTrainError> {
    if dim == 0 || features.len() != labels.len() * dim || heldout.len() != labels.len() {
        return Err(HeadTrainError::Shape { features: features.len(), rows: labels.len(), dim });
    }
    let c = classes.len();
    let (train_x, train_y) = (select(features, dim, heldout, false), select(labels, 1, heldout, false));
    let (test_x, test_y) = (select(features, dim, heldout, true), select(labels, 1, heldout, true));
    let mut seen = train_y.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() < 2 {
        return Err(HeadTrainError::TooFewClasses(seen.len()));
    }
    if test_y.is_empty() {
        return Err(HeadTrainError::NoHeldOutRows { rows: labels.len() });
    }
    let model: LinearModel =
        logistic::fit(&Examples { features: &train_x, dim, labels: &train_y, classes: c }, options.l2);
    let logits = model.logits(&test_x);
    let temperature = calibrate::fit_temperature(&logits, &test_y, c);
    let mut correct_confidences = Vec::new();
    for (row, &y) in logits.chunks_exact(c).zip(&test_y) {
        let best = argmax(row);
        if best == y as usize {
            correct_confidences.push(fruits_formats::head::softmax(row, temperature)[best]);
        }
    }
    let unknown_threshold = calibrate::unknown_threshold(&correct_confidences, options.known_recall);
    let head = RecognitionHead {
        classes: classes.to_vec(),
        input_dim: dim as u32,
        weights: model.weights,
        bias: model.bias,
        temperature,
        unknown_threshold,
    };
    let known = logits
        .chunks_exact(c)
        .filter(|row| fruits_formats::head::softmax(row, temperature)[argmax(row)] >= unknown_threshold)
        .count();
    let n = test_y.len() as f64;
    let metrics = HeadMetrics {
        input_dim: dim,
        classes: c,
        train_rows: train_y.len(),
        heldout_rows: test_y.len(),
        heldout_accuracy: correct_confidences.len() as f64 / n,
        heldout_known_rate: known as f64 / n,
        heldout_nll_raw: calibrate::nll(&logits, &test_y, c, 1.0),
        heldout_nll_calibrated: calibrate::nll(&logits, &test_y, c, temperature),
        temperature,
        unknown_threshold,
        iterations: model.iterations,
    };
    Ok(TrainedHead { head, metrics })
}

/// The first `width` PCA codes of every row of `set` under `artifact`.
pub fn codes(artifact: &ProjectionArtifact, set: &LabelledSet, width: usize) -> Result<Vec<f32>, HeadTrainError> {
    if set.dim() != artifact.dim as usize {
        return Err(HeadTrainError::WrongDimension { rows: set.dim(), projection: artifact.dim });
    }
    let mut out = Vec::with_capacity(set.len() * width);
    for row in set.rows().chunks_exact(set.dim()) {
        out.extend(artifact.project(row).into_iter().flatten().take(width));
    }
    Ok(out)
}

/// Trains the head the artifact publishes: over all its `k` codes.
pub fn train_on_codes(
    artifact: &ProjectionArtifact,
    set: &LabelledSet,
    options: &HeadOptions,
) -> Result<TrainedHead, HeadTrainError> {
    let k = artifact.k as usize;
    let heldout = heldout_mask(set.rows(), set.dim(), options.heldout_percent);
    train(&codes(artifact, set, k)?, k, set.labels(), set.classes(), &heldout, options)
}

/// What to train a head with: the options and the catalogue to publish beside it.
#[derive(Debug, Clone)]
pub struct HeadTraining {
    /// Training choices.
    pub options: HeadOptions,
    /// Fruit information; the entries of the head's classes are published.
    pub catalogue: Vec<FruitInfo>,
}

/// Trains the head over the codes of `set` under `artifact` and puts it, with the
/// catalogue entries of its classes, into the artifact; returns what training
/// measured. Nothing changes when `set` is empty (`Ok(None)`).
pub fn attach(
    artifact: &mut ProjectionArtifact,
    set: &LabelledSet,
    training: &HeadTraining,
) -> Result<Option<HeadMetrics>, HeadTrainError> {
    if set.is_empty() {
        return Ok(None);
    }
    let trained = train_on_codes(artifact, set, &training.options)?;
    artifact.catalogue = crate::catalogue::for_classes(&training.catalogue, &trained.head.classes);
    artifact.head = Some(trained.head);
    Ok(Some(trained.metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_a_function_of_the_rows_only() {
        let rows: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.731).sin()).collect();
        let mask = heldout_mask(&rows, 4, 20);
        let share = mask.iter().filter(|m| **m).count() as f64 / 1000.0;
        assert!((0.15..0.25).contains(&share), "{share}");
        let reversed: Vec<f32> = rows.chunks_exact(4).rev().flatten().copied().collect();
        let mut back = heldout_mask(&reversed, 4, 20);
        back.reverse();
        assert_eq!(mask, back);
    }

    #[test]
    fn refuses_what_it_cannot_train() {
        let classes = vec!["A".to_string(), "B".to_string()];
        let opts = HeadOptions::default();
        let one_class = train(&[0.0, 1.0, 2.0], 1, &[0, 0, 0], &classes, &[false, false, true], &opts);
        assert_eq!(one_class.unwrap_err(), HeadTrainError::TooFewClasses(1));
        let no_heldout = train(&[0.0, 1.0], 1, &[0, 1], &classes, &[false, false], &opts);
        assert_eq!(no_heldout.unwrap_err(), HeadTrainError::NoHeldOutRows { rows: 2 });
        assert!(matches!(
            train(&[0.0], 1, &[0, 1], &classes, &[false, true], &opts),
            Err(HeadTrainError::Shape { .. })
        ));
    }

    #[test]
    fn a_separable_problem_is_learnt_and_calibrated() {
        let classes = vec!["Low".to_string(), "High".to_string()];
        let features: Vec<f32> =
            (0..200).map(|i| if i % 2 == 0 { -1.0 } else { 1.0 } + (i as f32 * 0.37).sin() * 0.3).collect();
        let labels: Vec<u32> = (0..200).map(|i| i % 2).collect();
        let heldout: Vec<bool> = (0..200).map(|i| i % 5 == 0).collect();
        let trained = train(&features, 1, &labels, &classes, &heldout, &HeadOptions::default()).unwrap();
        assert_eq!(trained.metrics.heldout_accuracy, 1.0);
        assert_eq!((trained.metrics.train_rows, trained.metrics.heldout_rows), (160, 40));
        assert!(trained.metrics.heldout_nll_calibrated <= trained.metrics.heldout_nll_raw + 1e-12);
        assert!(trained.metrics.heldout_known_rate >= 0.95);
        assert!(trained.head.validate().is_ok());
        assert_eq!(trained.head.predict(&[1.2]).unwrap().best, 1);
    }
}
