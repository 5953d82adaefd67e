//! Calibration on held-out rows: the softmax temperature (Guo et al. 2017,
//! "On Calibration of Modern Neural Networks"), the "unknown" threshold and the
//! expected calibration error.

use fruits_formats::head::{MAX_TEMPERATURE, softmax};

/// The lowest temperature the fit returns: it only softens (see [`fit_temperature`]).
pub const MIN_FITTED_TEMPERATURE: f32 = 1.0;

/// Mean negative log-likelihood of `labels` under `softmax(logits / t)`.
pub fn nll(logits: &[f32], labels: &[u32], classes: usize, t: f32) -> f64 {
    let n = labels.len().max(1) as f64;
    logits
        .chunks_exact(classes)
        .zip(labels)
        .map(|(row, &y)| {
            let p = softmax(row, t)[y as usize];
            -f64::from(p.max(f32::MIN_POSITIVE)).ln()
        })
        .sum::<f64>()
        / n
}

/// The temperature minimising the held-out negative log-likelihood: golden-section
/// search on `ln t` over `[1, 100]` (the NLL is unimodal in `t` for fixed logits
/// in practice; the search is deterministic and needs no gradient).
///
/// Only softening (t >= 1): when every held-out row is classified right (views of
/// photos the head was trained on; or classes so far apart that even other devices'
/// photos are easy), the NLL keeps falling as t -> 0 and a fit below 1 runs to the
/// bound. Confidences then round to exactly 1.0 in f32 and the unknown threshold with
/// them, so that nothing the head never saw could be told apart any more (measured:
/// t = 0.01, threshold 1.0, 85% of vegetables answered as fruits on one host, 20% on
/// another). A logistic head with a small penalty is overconfident, not the reverse,
/// so no real fit needs t < 1.
pub fn fit_temperature(logits: &[f32], labels: &[u32], classes: usize) -> f32 {
    if labels.is_empty() {
        return 1.0;
    }
    let f = |ln_t: f64| nll(logits, labels, classes, ln_t.exp() as f32);
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut lo, mut hi) = (f64::from(MIN_FITTED_TEMPERATURE).ln(), 100f64.ln());
    let mut a = hi - ratio * (hi - lo);
    let mut b = lo + ratio * (hi - lo);
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 0..60 {
        if fa <= fb {
            hi = b;
            (b, fb) = (a, fa);
            a = hi - ratio * (hi - lo);
            fa = f(a);
        } else {
            lo = a;
            (a, fa) = (b, fb);
            b = lo + ratio * (hi - lo);
            fb = f(b);
        }
    }
    (((lo + hi) / 2.0).exp() as f32).clamp(MIN_FITTED_TEMPERATURE, MAX_TEMPERATURE)
}

/// The threshold that keeps `known_recall` of the correctly recognised held-out
/// rows: the `(1 - known_recall)` quantile of their calibrated confidences (lower
/// value of the two around it), so anything less confident than all but the
/// least sure few percent of real fruits is called "unknown".
pub fn unknown_threshold(correct_confidences: &[f32], known_recall: f64) -> f32 {
    if correct_confidences.is_empty() {
        return 0.0;
    }
    let mut sorted = correct_confidences.to_vec();
    sorted.sort_by(f32::total_cmp);
    let rejected = ((1.0 - known_recall.clamp(0.0, 1.0)) * sorted.len() as f64).floor() as usize;
    sorted[rejected.min(sorted.len() - 1)].clamp(0.0, 1.0)
}

/// The threshold below which at least `rejection` of `novel_confidences` fall: the
/// calibrated top probabilities the head gives rows of classes it never trained on
/// (held-out devices' photos of fruits no other device showed it), the closest thing
/// to "not a fruit it knows" among labelled rows. 1 when there are none.
pub fn novel_threshold(novel_confidences: &[f32], rejection: f64) -> f32 {
    if novel_confidences.is_empty() {
        return 1.0;
    }
    let mut sorted = novel_confidences.to_vec();
    sorted.sort_by(f32::total_cmp);
    let rejected = (rejection.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    match rejected.checked_sub(1).and_then(|i| sorted.get(i)) {
        // The next float up, so that the `rejected` lowest are all strictly below it.
        Some(&highest_rejected) => f32::from_bits(highest_rejected.clamp(0.0, 1.0).to_bits() + 1).min(1.0),
        None => 0.0,
    }
}

/// Expected calibration error over equal-width confidence bins: the share-weighted
/// mean of `|accuracy - mean confidence|` per bin (Guo et al. 2017, 10 bins).
pub fn expected_calibration_error(confidences: &[f32], correct: &[bool], bins: usize) -> f64 {
    if confidences.is_empty() || bins == 0 {
        return 0.0;
    }
    let mut sums = vec![(0usize, 0f64, 0usize); bins];
    for (&c, &ok) in confidences.iter().zip(correct) {
        let bin = ((f64::from(c.clamp(0.0, 1.0)) * bins as f64).ceil() as usize).clamp(1, bins) - 1;
        sums[bin].0 += 1;
        sums[bin].1 += f64::from(c);
        sums[bin].2 += usize::from(ok);
    }
    let n = confidences.len() as f64;
    sums.iter()
        .filter(|(count, _, _)| *count > 0)
        .map(|&(count, confidence, right)| {
            let count_f = count as f64;
            count_f / n * (right as f64 / count_f - confidence / count_f).abs()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overconfident_logits_get_a_temperature_above_one() {
        // Scores of 10 vs 0, right only 80% of the time: the calibrated confidence
        // should come down near 0.8, i.e. t = 10 / ln 4 = 7.2.
        let mut logits = Vec::new();
        let mut labels = Vec::new();
        for i in 0..100 {
            logits.extend([10.0f32, 0.0]);
            labels.push(u32::from(i % 5 == 0));
        }
        let t = fit_temperature(&logits, &labels, 2);
        assert!((t - 10.0 / 4f32.ln()).abs() < 0.05, "{t}");
        assert!(nll(&logits, &labels, 2, t) < nll(&logits, &labels, 2, 1.0));
    }

    #[test]
    fn all_right_held_out_rows_do_not_sharpen_the_softmax() {
        // Every row right: the NLL falls towards t -> 0, the fit must stay at 1.
        let logits: Vec<f32> = (0..50).flat_map(|i| [3.0 + (i % 7) as f32, 0.5, 0.0]).collect();
        let labels = vec![0u32; 50];
        assert_eq!(fit_temperature(&logits, &labels, 3), 1.0);
        assert!(nll(&logits, &labels, 3, 0.5) < nll(&logits, &labels, 3, 1.0), "the NLL does fall below 1");
    }

    #[test]
    fn the_threshold_keeps_the_requested_share() {
        let confidences: Vec<f32> = (1..=100).map(|i| i as f32 / 100.0).collect();
        let t = unknown_threshold(&confidences, 0.95);
        assert_eq!(t, 0.06);
        assert_eq!(confidences.iter().filter(|&&c| c >= t).count(), 95);
        assert_eq!(unknown_threshold(&[], 0.95), 0.0);
        assert_eq!(unknown_threshold(&confidences, 1.0), 0.01);
    }

    #[test]
    fn the_novel_threshold_rejects_the_requested_share() {
        let confidences: Vec<f32> = (1..=10).map(|i| i as f32 / 10.0).collect();
        let t = novel_threshold(&confidences, 0.9);
        assert_eq!(confidences.iter().filter(|&&c| c < t).count(), 9);
        assert!(t > 0.9 && t < 0.9001);
        assert_eq!(novel_threshold(&confidences, 1.0), 1.0, "capped at 1");
        assert_eq!(novel_threshold(&confidences, 0.0), 0.0);
        assert_eq!(novel_threshold(&[], 0.9), 1.0);
    }

    #[test]
    fn calibration_error_is_zero_when_confidence_matches_accuracy() {
        let confidences = [0.75f32; 8];
        let right = [true, true, true, false, true, true, true, false];
        assert!(expected_calibration_error(&confidences, &right, 10) < 1e-7);
        let overconfident = [true, false, true, false, true, false, true, false];
        assert!((expected_calibration_error(&confidences, &overconfident, 10) - 0.25).abs() < 1e-7);
        assert_eq!(expected_calibration_error(&[], &[], 10), 0.0);
    }
}
