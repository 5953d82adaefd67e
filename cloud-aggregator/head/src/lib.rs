//! Training the recognition head (pure: labelled rows in, a calibrated head out).
//!
//! After the PCA, labelled embeddings are projected onto the `k` published
//! components, the codes are scaled to unit length ([`HeadInput::UnitCodes`]) and a
//! [`logistic`] regression is fitted on all of them. What makes the head's
//! confidence honest is where it is calibrated: on **devices the head never trained
//! on**. Rows are grouped by the device that uploaded them (one person's photos,
//! often of the same fruit); the devices are dealt into folds, a head is fitted
//! without each fold and scores the fold's rows (cross-fitting), and from those
//! out-of-fold scores come:
//!
//! * the softmax **temperature**, fitted on the rows whose class the fold's head knew
//!   ([`calibrate::fit_temperature`]);
//! * the **unknown threshold**: the rows whose class no other device showed the fold's
//!   head are the labelled stand-in for "a fruit the head does not know"; the threshold
//!   rejects [`HeadOptions::unknown_rejection`] of them ([`calibrate::novel_threshold`]).
//!   When every class appears in every fold there are none, and the threshold keeps
//!   [`HeadOptions::known_recall`] of the rows recognised right instead;
//! * the measures: top-1 on held-out devices, the calibration error (ECE), the share of
//!   unknown classes rejected.
//!
//! With rows of a single device nothing can be held out by device: the head is then
//! calibrated on a deterministic 20% of rows ([`heldout_mask`]), which views of one
//! photo fall on both sides of, so its figures are optimistic and
//! [`HeadMetrics::calibration`] says so.
//!
//! The same trainer runs on any feature space, which is how the report compares heads
//! at every `k` and on the full 1280-d embeddings.

// No panic reachable from input or from another request's failure (tests exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod calibrate;
pub mod labelled;
pub mod lbfgs;
pub mod logistic;

pub use labelled::LabelledSet;

use fruits_formats::head::softmax;
use fruits_formats::{FruitInfo, HeadInput, ProjectionArtifact, RecognitionHead};
use logistic::{Examples, LinearModel};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Training choices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadOptions {
    /// L2 penalty on the weights (on standardised features for [`HeadInput::Codes`]).
    pub l2: f64,
    /// How the head reads the codes.
    pub input: HeadInput,
    /// Most folds of devices for cross-fitting (fewer when there are fewer devices).
    pub folds: usize,
    /// Share of out-of-fold rows of classes the fold's head never saw that the unknown
    /// threshold rejects.
    pub unknown_rejection: f64,
    /// When no such rows exist: share of the rows recognised right the threshold keeps.
    pub known_recall: f64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        Self { l2: 1e-4, input: HeadInput::UnitCodes, folds: 5, unknown_rejection: 0.9, known_recall: 0.95 }
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

/// Where the head's calibration rows came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// Out-of-fold rows of devices the fold's head never trained on.
    HeldOutDevices,
    /// A 20% share of rows of the training devices (one device only): optimistic.
    HeldOutRows,
}

/// What training measured (written into `runs/<run>/`, `latest.json` and the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadMetrics {
    /// Input features per row.
    pub input_dim: usize,
    /// Classes.
    pub classes: usize,
    /// Rows the published head was fitted on.
    pub train_rows: usize,
    /// Where the calibration rows came from.
    pub calibration: Calibration,
    /// Folds the calibration rows were held out in (1 for [`Calibration::HeldOutRows`]).
    pub folds: usize,
    /// Held-out rows whose class the head that scored them knew.
    pub heldout_rows: usize,
    /// Top-1 accuracy on those rows (arg-max, unknown or not).
    pub heldout_accuracy: f64,
    /// Share of those rows answered with a class (confidence at or above the threshold).
    pub heldout_known_rate: f64,
    /// Share of the answers given on those rows that are right.
    pub heldout_answer_precision: f64,
    /// Expected calibration error on those rows at the fitted temperature (10 bins).
    pub heldout_ece: f64,
    /// Held-out rows whose class the head that scored them never saw.
    pub novel_rows: usize,
    /// Share of those answered "unknown".
    pub novel_rejected: f64,
    /// Held-out negative log-likelihood at temperature 1.
    pub heldout_nll_raw: f64,
    /// Held-out negative log-likelihood at the fitted temperature.
    pub heldout_nll_calibrated: f64,
    /// The fitted temperature.
    pub temperature: f32,
    /// The unknown threshold.
    pub unknown_threshold: f32,
    /// L-BFGS iterations of the published head's fit.
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

/// Labelled features to train on: `rows x dim` values (any space), a class and a
/// group (device) index per row.
#[derive(Debug, Clone, Copy)]
pub struct Features<'a> {
    /// `rows x dim`, row-major.
    pub values: &'a [f32],
    /// Features per row.
    pub dim: usize,
    /// One class index per row, each `< classes.len()`.
    pub labels: &'a [u32],
    /// One group index per row.
    pub groups: &'a [u32],
    /// Class names.
    pub classes: &'a [String],
}

impl Features<'_> {
    fn rows(&self) -> usize {
        self.labels.len()
    }

    fn check(&self) -> Result<(), HeadTrainError> {
        let n = self.rows();
        let shape_ok = self.dim > 0
            && self.values.len() == n * self.dim
            && self.groups.len() == n
            && self.labels.iter().all(|&l| (l as usize) < self.classes.len());
        match shape_ok {
            true => Ok(()),
            false => Err(HeadTrainError::Shape { features: self.values.len(), rows: n, dim: self.dim }),
        }
    }
}

/// `true` for the rows held out when there is one device: a sha256 of each row's
/// bytes, so the split depends on the data only (not on shard order or time) and is
/// the same on rerun.
pub fn heldout_mask(rows: &[f32], dim: usize, percent: u8) -> Vec<bool> {
    rows.chunks_exact(dim)
        .map(|row| {
            let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
            let digest = Sha256::digest(&bytes);
            u16::from_le_bytes([digest[0], digest[1]]) % 100 < u16::from(percent)
        })
        .collect()
}

/// Share of rows held out when there is one device.
const HELDOUT_PERCENT: u8 = 20;

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc }).0
}

/// Rows as the head reads them.
fn prepared(features: &Features, input: HeadInput) -> Vec<f32> {
    match input {
        HeadInput::Codes => features.values.to_vec(),
        HeadInput::UnitCodes => features.values.chunks_exact(features.dim).flat_map(|r| input.prepare(r)).collect(),
    }
}

fn fit_rows(x: &[f32], dim: usize, labels: &[u32], classes: usize, options: &HeadOptions) -> LinearModel {
    let examples = Examples { features: x, dim, labels, classes };
    logistic::fit(&examples, options.l2, options.input == HeadInput::Codes)
}

/// Out-of-fold scores: the logits each held-out row got from a head that never saw its
/// fold, and whether that head knew the row's class.
struct HeldOut {
    logits: Vec<f32>,
    labels: Vec<u32>,
    known: Vec<bool>,
    folds: usize,
    calibration: Calibration,
}

/// Scores every row with a head fitted without its fold of groups (or, with one group,
/// the 20% row split's held-out rows with a head fitted on the others).
fn held_out(x: &[f32], f: &Features, options: &HeadOptions) -> HeldOut {
    let (d, c) = (f.dim, f.classes.len());
    let mut distinct: Vec<u32> = f.groups.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let (fold_of, folds, calibration): (Vec<usize>, usize, Calibration) = if distinct.len() >= 2 {
        let folds = options.folds.clamp(2, distinct.len());
        let fold = |g: &u32| distinct.binary_search(g).unwrap_or(0) % folds;
        (f.groups.iter().map(fold).collect(), folds, Calibration::HeldOutDevices)
    } else {
        let mask = heldout_mask(f.values, d, HELDOUT_PERCENT);
        // Fold 0 trains, fold 1 is held out: one split, scored once.
        (mask.iter().map(|&m| usize::from(m)).collect(), 1, Calibration::HeldOutRows)
    };
    let mut out = HeldOut { logits: Vec::new(), labels: Vec::new(), known: Vec::new(), folds, calibration };
    let scored: Vec<usize> = match calibration {
        Calibration::HeldOutDevices => (0..folds).collect(),
        Calibration::HeldOutRows => vec![1],
    };
    for fold in scored {
        let train: Vec<usize> = (0..f.rows()).filter(|&i| fold_of[i] != fold).collect();
        let test: Vec<usize> = (0..f.rows()).filter(|&i| fold_of[i] == fold).collect();
        let mut seen = vec![false; c];
        train.iter().for_each(|&i| seen[f.labels[i] as usize] = true);
        if test.is_empty() || seen.iter().filter(|s| **s).count() < 2 {
            continue;
        }
        let train_x: Vec<f32> = train.iter().flat_map(|&i| x[i * d..(i + 1) * d].iter().copied()).collect();
        let train_y: Vec<u32> = train.iter().map(|&i| f.labels[i]).collect();
        let test_x: Vec<f32> = test.iter().flat_map(|&i| x[i * d..(i + 1) * d].iter().copied()).collect();
        let model = fit_rows(&train_x, d, &train_y, c, options);
        out.logits.extend(model.logits(&test_x));
        for &i in &test {
            out.labels.push(f.labels[i]);
            out.known.push(seen[f.labels[i] as usize]);
        }
    }
    out
}

/// Fits, calibrates and measures a head on `features` (see the crate docs).
pub fn train(features: &Features, options: &HeadOptions) -> Result<TrainedHead, HeadTrainError> {
    features.check()?;
    let (d, c, n) = (features.dim, features.classes.len(), features.rows());
    let mut present = vec![false; c];
    features.labels.iter().for_each(|&l| present[l as usize] = true);
    let classes_present = present.iter().filter(|p| **p).count();
    if classes_present < 2 {
        return Err(HeadTrainError::TooFewClasses(classes_present));
    }
    let x = prepared(features, options.input);
    let held = held_out(&x, features, options);
    let pick = |keep: bool| -> (Vec<f32>, Vec<u32>) {
        let rows = held.logits.chunks_exact(c).zip(&held.labels).zip(&held.known).filter(|(_, k)| **k == keep);
        let (logits, labels): (Vec<&[f32]>, Vec<u32>) = rows.map(|((l, y), _)| (l, *y)).unzip();
        (logits.concat(), labels)
    };
    let (known_logits, known_labels) = pick(true);
    let (novel_logits, _) = pick(false);
    if known_labels.is_empty() {
        return Err(HeadTrainError::NoHeldOutRows { rows: n });
    }
    let temperature = calibrate::fit_temperature(&known_logits, &known_labels, c);
    let top = |logits: &[f32]| -> Vec<(usize, f32)> {
        logits
            .chunks_exact(c)
            .map(|row| {
                let best = argmax(row);
                (best, softmax(row, temperature)[best])
            })
            .collect()
    };
    let known_top = top(&known_logits);
    let novel_confidences: Vec<f32> = top(&novel_logits).into_iter().map(|(_, p)| p).collect();
    let correct: Vec<bool> = known_top.iter().zip(&known_labels).map(|((b, _), y)| *b == *y as usize).collect();
    let confidences: Vec<f32> = known_top.iter().map(|(_, p)| *p).collect();
    let unknown_threshold = if novel_confidences.is_empty() {
        let right: Vec<f32> = confidences.iter().zip(&correct).filter(|(_, ok)| **ok).map(|(p, _)| *p).collect();
        calibrate::unknown_threshold(&right, options.known_recall)
    } else {
        calibrate::novel_threshold(&novel_confidences, options.unknown_rejection)
    };
    let model = fit_rows(&x, d, features.labels, c, options);
    let head = RecognitionHead {
        classes: features.classes.to_vec(),
        input_dim: d as u32,
        input: options.input,
        weights: model.weights,
        bias: model.bias,
        temperature,
        unknown_threshold,
    };
    let share = |count: usize, of: usize| if of == 0 { 0.0 } else { count as f64 / of as f64 };
    let answered: Vec<bool> = confidences.iter().map(|&p| p >= unknown_threshold).collect();
    let answered_right = answered.iter().zip(&correct).filter(|(a, ok)| **a && **ok).count();
    let answers = answered.iter().filter(|a| **a).count();
    let rejected = novel_confidences.iter().filter(|&&p| p < unknown_threshold).count();
    let metrics = HeadMetrics {
        input_dim: d,
        classes: c,
        train_rows: n,
        calibration: held.calibration,
        folds: held.folds,
        heldout_rows: known_labels.len(),
        heldout_accuracy: share(correct.iter().filter(|ok| **ok).count(), correct.len()),
        heldout_known_rate: share(answers, answered.len()),
        heldout_answer_precision: share(answered_right, answers),
        heldout_ece: calibrate::expected_calibration_error(&confidences, &correct, 10),
        novel_rows: novel_confidences.len(),
        novel_rejected: share(rejected, novel_confidences.len()),
        heldout_nll_raw: calibrate::nll(&known_logits, &known_labels, c, 1.0),
        heldout_nll_calibrated: calibrate::nll(&known_logits, &known_labels, c, temperature),
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
    let codes = codes(artifact, set, k)?;
    let features =
        Features { values: &codes, dim: k, labels: set.labels(), groups: set.groups(), classes: set.classes() };
    train(&features, options)
}

/// The full embeddings of `set` as features (the head the report compares with).
pub fn embedding_features(set: &LabelledSet) -> Features<'_> {
    Features { values: set.rows(), dim: set.dim(), labels: set.labels(), groups: set.groups(), classes: set.classes() }
}

/// What to train a head with: the options and the catalogue to publish beside it.
#[derive(Debug, Clone)]
pub struct HeadTraining {
    /// Training choices.
    pub options: HeadOptions,
    /// Fruit information; the entries of the head's classes are published.
    pub catalogue: Vec<FruitInfo>,
}

/// The entries describing `classes`, in class order (classes without one are skipped).
pub fn catalogue_for(catalogue: &[FruitInfo], classes: &[String]) -> Vec<FruitInfo> {
    classes.iter().filter_map(|c| catalogue.iter().find(|info| &info.class == c).cloned()).collect()
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
    artifact.catalogue = catalogue_for(&training.catalogue, &trained.head.classes);
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

    fn features<'a>(
        values: &'a [f32],
        dim: usize,
        labels: &'a [u32],
        groups: &'a [u32],
        classes: &'a [String],
    ) -> Features<'a> {
        Features { values, dim, labels, groups, classes }
    }

    #[test]
    fn refuses_what_it_cannot_train() {
        let classes = vec!["A".to_string(), "B".to_string()];
        let opts = HeadOptions::default();
        let one_class = train(&features(&[0.0, 1.0, 2.0], 1, &[0, 0, 0], &[0, 1, 2], &classes), &opts);
        assert_eq!(one_class.unwrap_err(), HeadTrainError::TooFewClasses(1));
        // Two devices, each with one class: every held-out row is of a class its head never saw.
        let nothing_known = train(&features(&[0.0, 1.0], 1, &[0, 1], &[0, 1], &classes), &opts);
        assert_eq!(nothing_known.unwrap_err(), HeadTrainError::NoHeldOutRows { rows: 2 });
        assert!(matches!(
            train(&features(&[0.0], 1, &[0, 1], &[0, 0], &classes), &opts),
            Err(HeadTrainError::Shape { .. })
        ));
        assert!(matches!(
            train(&features(&[0.0, 1.0], 1, &[0, 2], &[0, 0], &classes), &opts),
            Err(HeadTrainError::Shape { .. })
        ));
    }

    /// Points around three directions in 2-d (angles 0, 120 and 240 degrees), with a
    /// radius that varies, from `devices` devices that each show every class.
    fn three_directions(rows: usize, devices: u32) -> (Vec<f32>, Vec<u32>, Vec<u32>) {
        let mut values = Vec::new();
        let (mut labels, mut groups) = (Vec::new(), Vec::new());
        for i in 0..rows {
            let class = (i % 3) as u32;
            let angle = f32::from(class as u16) * 2.094 + (i as f32 * 0.37).sin() * 0.5;
            let radius = 1.0 + (i as f32 * 0.11).cos().abs() * 5.0;
            values.extend([radius * angle.cos(), radius * angle.sin()]);
            labels.push(class);
            groups.push((i / 3) as u32 % devices);
        }
        (values, labels, groups)
    }

    #[test]
    fn a_separable_problem_is_learnt_and_calibrated_on_held_out_devices() {
        let classes: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
        let (values, labels, groups) = three_directions(300, 6);
        let trained = train(&features(&values, 2, &labels, &groups, &classes), &HeadOptions::default()).unwrap();
        let m = &trained.metrics;
        assert_eq!((m.calibration, m.folds, m.heldout_rows, m.novel_rows), (Calibration::HeldOutDevices, 5, 300, 0));
        assert_eq!(m.heldout_accuracy, 1.0);
        assert!(m.heldout_nll_calibrated <= m.heldout_nll_raw + 1e-12);
        assert!(m.heldout_known_rate >= 0.95 && m.heldout_answer_precision == 1.0, "{m:?}");
        assert!(m.heldout_ece < 0.1, "{m:?}");
        assert!(trained.head.validate().is_ok());
        assert_eq!(trained.head.input, HeadInput::UnitCodes);
        // Unit codes: the radius does not matter, the direction does.
        assert_eq!(trained.head.predict(&[-0.5, 0.87]).unwrap().best, 1);
        assert_eq!(trained.head.predict(&[-50.0, 87.0]).unwrap().best, 1);
    }

    #[test]
    fn classes_no_other_device_showed_set_the_unknown_threshold() {
        // Classes A and B on every device; C only on device 0, so C's rows are held out
        // by a head that never saw C: they are "unknown fruits", and 90% must be rejected.
        let classes: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
        let (values, labels, mut groups) = three_directions(300, 5);
        labels.iter().zip(groups.iter_mut()).filter(|(l, _)| **l == 2).for_each(|(_, g)| *g = 0);
        let trained = train(&features(&values, 2, &labels, &groups, &classes), &HeadOptions::default()).unwrap();
        let m = &trained.metrics;
        assert_eq!(m.novel_rows, 100);
        assert!(m.novel_rejected >= 0.9, "{m:?}");
        assert!(m.heldout_accuracy > 0.95, "{m:?}");
    }

    #[test]
    fn one_device_falls_back_to_a_row_split_and_says_so() {
        let classes: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
        let (values, labels, _) = three_directions(300, 1);
        let groups = vec![0; 300];
        let trained = train(&features(&values, 2, &labels, &groups, &classes), &HeadOptions::default()).unwrap();
        let m = &trained.metrics;
        assert_eq!((m.calibration, m.folds, m.novel_rows), (Calibration::HeldOutRows, 1, 0));
        assert!((40..80).contains(&m.heldout_rows), "{m:?}");
        assert!(m.temperature >= calibrate::MIN_FITTED_TEMPERATURE);
    }
}
