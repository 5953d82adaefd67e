//! Limited-memory BFGS with a backtracking (Armijo) line search: the deterministic
//! full-batch minimiser behind the recognition head.

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub struct Stopping {
    /// Most iterations.
    pub max_iterations: usize,
    /// Stop when the gradient's max-norm falls below this.
    pub gradient_tolerance: f64,
    /// Stop when an iteration lowers the objective by less than this, relatively.
    pub relative_decrease: f64,
}

/// Where the minimiser stopped.
#[derive(Debug, Clone)]
pub struct Minimum {
    /// The point.
    pub x: Vec<f64>,
    /// The objective there.
    pub value: f64,
    /// Iterations taken.
    pub iterations: usize,
}

const HISTORY: usize = 10;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises a smooth function given as `f(x) -> (value, gradient)` from `x0`.
pub fn minimize(f: impl Fn(&[f64]) -> (f64, Vec<f64>), x0: Vec<f64>, stop: Stopping) -> Minimum {
    let mut x = x0;
    let (mut value, mut grad) = f(&x);
    let mut history: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::with_capacity(HISTORY);
    let mut iterations = 0;
    while iterations < stop.max_iterations && grad.iter().fold(0.0f64, |m, g| m.max(g.abs())) > stop.gradient_tolerance
    {
        iterations += 1;
        let direction = two_loop(&grad, &history);
        let slope = dot(&direction, &grad);
        // A direction that does not descend (lost curvature): restart from the gradient.
        let (direction, slope) = if slope < 0.0 {
            (direction, slope)
        } else {
            history.clear();
            (grad.iter().map(|g| -g).collect(), -dot(&grad, &grad))
        };
        let mut step = if history.is_empty() { 1.0 / grad.iter().map(|g| g.abs()).sum::<f64>().max(1.0) } else { 1.0 };
        let accepted = loop {
            let candidate: Vec<f64> = x.iter().zip(&direction).map(|(x, d)| x + step * d).collect();
            let (v, g) = f(&candidate);
            if v.is_finite() && v <= value + 1e-4 * step * slope {
                break Some((candidate, v, g));
            }
            step *= 0.5;
            if step < 1e-20 {
                break None;
            }
        };
        let Some((next, next_value, next_grad)) = accepted else { break };
        let s: Vec<f64> = next.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = next_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            if history.len() == HISTORY {
                history.remove(0);
            }
            history.push((s, y, 1.0 / sy));
        }
        let decrease = (value - next_value) / value.abs().max(1e-12);
        (x, value, grad) = (next, next_value, next_grad);
        if decrease < stop.relative_decrease {
            break;
        }
    }
    Minimum { x, value, iterations }
}

/// The L-BFGS two-loop recursion: `-H g` for the implicit inverse Hessian `H`.
fn two_loop(grad: &[f64], history: &[(Vec<f64>, Vec<f64>, f64)]) -> Vec<f64> {
    let mut q = grad.to_vec();
    let mut alphas = Vec::with_capacity(history.len());
    for (s, y, rho) in history.iter().rev() {
        let alpha = rho * dot(s, &q);
        q.iter_mut().zip(y).for_each(|(q, y)| *q -= alpha * y);
        alphas.push(alpha);
    }
    if let Some((s, y, _)) = history.last() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|q| *q *= gamma);
    }
    for ((s, y, rho), alpha) in history.iter().zip(alphas.iter().rev()) {
        let beta = rho * dot(y, &q);
        q.iter_mut().zip(s).for_each(|(q, s)| *q += (alpha - beta) * s);
    }
    q.iter_mut().for_each(|q| *q = -*q);
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_the_rosenbrock_valley() {
        let rosenbrock = |x: &[f64]| {
            let (a, b) = (x[0], x[1]);
            let value = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
            let grad = vec![-2.0 * (1.0 - a) - 400.0 * a * (b - a * a), 200.0 * (b - a * a)];
            (value, grad)
        };
        let stop = Stopping { max_iterations: 500, gradient_tolerance: 1e-8, relative_decrease: 0.0 };
        let m = minimize(rosenbrock, vec![-1.2, 1.0], stop);
        assert!((m.x[0] - 1.0).abs() < 1e-5 && (m.x[1] - 1.0).abs() < 1e-5, "{m:?}");
        assert!(m.iterations < 200, "{}", m.iterations);
    }
}
