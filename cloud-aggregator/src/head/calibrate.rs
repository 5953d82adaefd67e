//! Calibration on held-out rows: the softmax temperature (Guo et al. 2017,
//! "On Calibration of Modern Neural Networks") and the "unknown" threshold.

use fruits_formats::head::{MAX_TEMPERATURE, softmax};

/// The lowest temperature the fit returns: it only softens (see [`fit_temperature`]).
const MIN_FITTED_TEMPERATURE: f32 = 1.0;

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
/// Only softening (t >= 1): when every held-out row is classified right, as when
/// they are views of photos the head was trained on, the NLL keeps falling as
/// t -> 0 and a fit below 1 runs to the bound. Confidences then round to exactly
/// 1.0 in f32 and the unknown threshold with them, so whether a vegetable passes
/// as a fruit came down to its last bit (measured: t = 0.01, threshold 1.0, 85%
/// of vegetables answered as fruits on one host, 20% on another).
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
}
