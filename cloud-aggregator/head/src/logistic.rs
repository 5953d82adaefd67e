//! Multinomial logistic regression with an L2 penalty, fitted full-batch by L-BFGS.
//!
//! Why this model: the embeddings are the penultimate layer of a network whose
//! last layer *was* a softmax-linear classifier, so classes are close to linearly
//! separable there by construction, and a linear head on PCA codes is a rotation
//! away from that. Multinomial (not one-vs-rest) logistic regression gives one
//! coherent probability vector that temperature scaling can calibrate, the L2
//! penalty keeps it unique and well-posed on separable data, and its objective is
//! strictly convex: full-batch L-BFGS from zero reaches the same optimum whatever
//! the row order or thread count, so training is deterministic and reproducible
//! (no SGD noise, no random initialisation). It is a few KB on the phone and one
//! `k x classes` product per photo. Raw codes can be standardised during the fit
//! (so one penalty suits every component whatever its variance), the scaling folded
//! back into the weights; unit-length codes are fitted as they are, since
//! standardising them would undo the cosine geometry they are chosen for.

use super::lbfgs::{self, Stopping};

/// Rows of features with a class index per row.
#[derive(Debug, Clone, Copy)]
pub struct Examples<'a> {
    /// `rows x dim` features, row-major.
    pub features: &'a [f32],
    /// Features per row.
    pub dim: usize,
    /// One class index per row, each `< classes`.
    pub labels: &'a [u32],
    /// Number of classes.
    pub classes: usize,
}

impl Examples<'_> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }
}

/// A fitted linear classifier over raw features: `logits = W x + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    /// `classes x dim`, row-major.
    pub weights: Vec<f32>,
    /// One per class.
    pub bias: Vec<f32>,
    /// Features per row.
    pub dim: usize,
    /// L-BFGS iterations the fit took.
    pub iterations: usize,
}

impl LinearModel {
    /// Logits of every row, `rows x classes`.
    pub fn logits(&self, features: &[f32]) -> Vec<f32> {
        let classes = self.bias.len();
        let rows = features.len() / self.dim;
        let mut out = vec![0f32; rows * classes];
        for (row, logits) in features.chunks_exact(self.dim).zip(out.chunks_exact_mut(classes)) {
            for ((logit, w), b) in logits.iter_mut().zip(self.weights.chunks_exact(self.dim)).zip(&self.bias) {
                *logit = b + w.iter().zip(row).map(|(w, x)| w * x).sum::<f32>();
            }
        }
        out
    }
}

/// Fits the model minimising mean cross-entropy `+ l2 / 2 * |W|^2` (bias unpenalised),
/// on standardised features when `standardise` is set.
pub fn fit(examples: &Examples, l2: f64, standardise: bool) -> LinearModel {
    let (n, d, c) = (examples.rows(), examples.dim, examples.classes);
    let (mean, scale) = if standardise { standardisation(examples) } else { (vec![0.0; d], vec![1.0; d]) };
    let z: Vec<f64> = examples
        .features
        .chunks_exact(d)
        .flat_map(|row| row.iter().zip(&mean).zip(&scale).map(|((x, m), s)| (f64::from(*x) - m) / s))
        .collect();
    let objective = |theta: &[f64]| loss_and_gradient(theta, &z, examples.labels, n, d, c, l2);
    let stop = Stopping { max_iterations: 1000, gradient_tolerance: 1e-7, relative_decrease: 1e-10 };
    let found = lbfgs::minimize(objective, vec![0.0; c * d + c], stop);
    let (w, b) = found.x.split_at(c * d);
    // Fold the standardisation back: W (x - m) / s + b = (W / s) x + (b - W m / s).
    let mut weights = Vec::with_capacity(c * d);
    let mut bias = Vec::with_capacity(c);
    for (w, b) in w.chunks_exact(d).zip(b) {
        let folded: Vec<f64> = w.iter().zip(&scale).map(|(w, s)| w / s).collect();
        bias.push((b - folded.iter().zip(&mean).map(|(w, m)| w * m).sum::<f64>()) as f32);
        weights.extend(folded.iter().map(|&w| w as f32));
    }
    LinearModel { weights, bias, dim: d, iterations: found.iterations }
}

/// Per-feature mean and standard deviation (1 for constant features).
fn standardisation(examples: &Examples) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (examples.rows().max(1) as f64, examples.dim);
    let mut mean = vec![0f64; d];
    for row in examples.features.chunks_exact(d) {
        mean.iter_mut().zip(row).for_each(|(m, x)| *m += f64::from(*x) / n);
    }
    let mut var = vec![0f64; d];
    for row in examples.features.chunks_exact(d) {
        var.iter_mut().zip(row).zip(&mean).for_each(|((v, x), m)| *v += (f64::from(*x) - m).powi(2) / n);
    }
    let scale = var.iter().map(|v| if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 }).collect();
    (mean, scale)
}

/// Mean cross-entropy plus penalty, and its gradient, at `theta = [W | b]`.
fn loss_and_gradient(
    theta: &[f64],
    z: &[f64],
    labels: &[u32],
    n: usize,
    d: usize,
    c: usize,
    l2: f64,
) -> (f64, Vec<f64>) {
    let (w, b) = theta.split_at(c * d);
    let mut logits = vec![0f64; n * c];
    // logits (n x c) = Z (n x d) * W^T (d x c).
    // SAFETY: Z holds n x d values (row stride d), W holds c x d values read as its
    // d x c transpose (row stride 1, column stride d), logits holds n x c (stride c).
    unsafe {
        matrixmultiply::dgemm(
            n,
            d,
            c,
            1.0,
            z.as_ptr(),
            d as isize,
            1,
            w.as_ptr(),
            1,
            d as isize,
            0.0,
            logits.as_mut_ptr(),
            c as isize,
            1,
        );
    }
    let mut loss = 0.0;
    for (row, &label) in logits.chunks_exact_mut(c).zip(labels) {
        row.iter_mut().zip(b).for_each(|(l, b)| *l += b);
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|l| (l - max).exp()).sum();
        loss += max + sum.ln() - row[label as usize];
        // Turn the row into (softmax - one-hot) / n: the gradient of the mean loss.
        row.iter_mut().for_each(|l| *l = (*l - max).exp() / sum / n as f64);
        row[label as usize] -= 1.0 / n as f64;
    }
    let mut grad = vec![0f64; c * d + c];
    let (gw, gb) = grad.split_at_mut(c * d);
    // gW (c x d) = G^T (c x n) * Z (n x d).
    // SAFETY: G (in `logits`) holds n x c values read as its c x n transpose, Z holds
    // n x d (stride d), gW holds c x d (stride d).
    unsafe {
        matrixmultiply::dgemm(
            c,
            n,
            d,
            1.0,
            logits.as_ptr(),
            1,
            c as isize,
            z.as_ptr(),
            d as isize,
            1,
            0.0,
            gw.as_mut_ptr(),
            d as isize,
            1,
        );
    }
    gw.iter_mut().zip(w).for_each(|(g, w)| *g += l2 * w);
    for row in logits.chunks_exact(c) {
        gb.iter_mut().zip(row).for_each(|(g, r)| *g += r);
    }
    let penalty = 0.5 * l2 * w.iter().map(|w| w * w).sum::<f64>();
    (loss / n as f64 + penalty, grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three Gaussian-ish clusters in 2-d, offset by a large mean on one axis.
    fn clusters() -> (Vec<f32>, Vec<u32>) {
        let centres = [(0.0, 100.0), (3.0, 100.0), (0.0, 103.0)];
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for i in 0..150u32 {
            let (cx, cy) = centres[(i % 3) as usize];
            let jitter = ((i * 7919) % 97) as f32 / 97.0 - 0.5;
            let jitter2 = ((i * 104_729) % 89) as f32 / 89.0 - 0.5;
            features.extend([cx + jitter, cy + jitter2]);
            labels.push(i % 3);
        }
        (features, labels)
    }

    #[test]
    fn separates_clusters_and_the_gradient_is_right() {
        let (features, labels) = clusters();
        let ex = Examples { features: &features, dim: 2, labels: &labels, classes: 3 };
        let model = fit(&ex, 1e-3, true);
        let logits = model.logits(&features);
        let correct = logits
            .chunks_exact(3)
            .zip(&labels)
            .filter(|(l, y)| l.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0 == **y as usize)
            .count();
        assert_eq!(correct, 150);
        // Finite differences agree with the analytic gradient.
        let z: Vec<f64> = features.iter().map(|&x| f64::from(x) / 50.0).collect();
        let theta: Vec<f64> = (0..9).map(|i| (i as f64 * 0.37).sin()).collect();
        let (_, grad) = loss_and_gradient(&theta, &z, &labels, 150, 2, 3, 0.1);
        for i in 0..9 {
            let mut up = theta.clone();
            up[i] += 1e-6;
            let mut down = theta.clone();
            down[i] -= 1e-6;
            let numeric = (loss_and_gradient(&up, &z, &labels, 150, 2, 3, 0.1).0
                - loss_and_gradient(&down, &z, &labels, 150, 2, 3, 0.1).0)
                / 2e-6;
            assert!((numeric - grad[i]).abs() < 1e-6, "{i}: {numeric} vs {}", grad[i]);
        }
    }

    #[test]
    fn the_fit_is_deterministic_and_stronger_penalties_shrink_weights() {
        let (features, labels) = clusters();
        let ex = Examples { features: &features, dim: 2, labels: &labels, classes: 3 };
        assert_eq!(fit(&ex, 1e-2, true), fit(&ex, 1e-2, true));
        assert_eq!(fit(&ex, 1e-2, false), fit(&ex, 1e-2, false));
        let norm = |m: &LinearModel| m.weights.iter().map(|w| w * w).sum::<f32>();
        assert!(norm(&fit(&ex, 1.0, true)) < norm(&fit(&ex, 1e-2, true)));
    }
}
