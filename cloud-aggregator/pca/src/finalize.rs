//! From a sketch to a projection: covariance, top-k eigenpairs, sign convention,
//! explained variance and the number of components needed for 90/95/99%.

use crate::eigen::{self, Solver};
use crate::sketch::ScatterSketch;
use fruits_formats::ProjectionArtifact;
use fruits_formats::artifact::MAX_K;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

/// Shares of the total variance for which [`Pca::components_for`] is reported.
pub const VARIANCE_SHARES: [f64; 3] = [0.90, 0.95, 0.99];

/// Why a sketch cannot be finalised.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FinalizeError {
    /// A covariance needs at least two rows.
    #[error("{0} rows sketched; at least 2 are needed")]
    TooFewRows(u64),
    /// `k` must be between 1 and the dimension (and the artifact's limit).
    #[error("k = {k} is out of range for dimension {dim}")]
    BadK {
        /// The requested number of components.
        k: u32,
        /// The embedding dimension.
        dim: u32,
    },
    /// The covariance's eigenpairs could not be computed.
    #[error(transparent)]
    Eigen(#[from] crate::eigen::EigenError),
}

/// How many components reach a share of the total variance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VarianceThreshold {
    /// The share of total variance, e.g. 0.95.
    pub share: f64,
    /// The smallest number of components whose variance reaches it.
    pub components: u32,
}

/// A finalised PCA: the artifact to publish and the variance thresholds.
#[derive(Debug, Clone)]
pub struct Pca {
    /// The projection artifact (version and time as given to [`finalize`]).
    pub artifact: ProjectionArtifact,
    /// Components needed for each of [`VARIANCE_SHARES`], from the full spectrum.
    pub components_for: Vec<VarianceThreshold>,
}

/// Computes the top-`k` PCA of everything in `sketch`.
pub fn finalize(
    sketch: &ScatterSketch,
    k: u32,
    solver: Solver,
    version: u32,
    created_unix_ms: u64,
) -> Result<Pca, FinalizeError> {
    let dim = sketch.dim();
    if k == 0 || k > dim || k > MAX_K {
        return Err(FinalizeError::BadK { k, dim });
    }
    let cov = sketch.covariance().ok_or(FinalizeError::TooFewRows(sketch.rows()))?;
    let d = dim as usize;
    let cov = DMatrix::from_row_slice(d, d, &cov);
    let total_variance = cov.trace();
    let eig = eigen::top_k(&cov, k as usize, solver)?;
    let mut components = Vec::with_capacity(k as usize * d);
    for c in 0..k as usize {
        let v = eig.vectors.column(c);
        let sign = sign_of_largest(v.as_slice());
        components.extend(v.iter().map(|&x| (x * sign) as f32));
    }
    let explained_variance: Vec<f64> = eig.values.iter().map(|v| v.max(0.0)).collect();
    let explained_variance_ratio = explained_variance.iter().map(|v| v / total_variance).collect();
    let artifact = ProjectionArtifact {
        version,
        model_id: sketch.model_id(),
        created_unix_ms,
        dim,
        k,
        rows: sketch.rows(),
        mean: sketch.mean().iter().map(|&m| m as f32).collect(),
        components,
        explained_variance,
        explained_variance_ratio,
        total_variance,
        head: None,
        catalogue: Vec::new(),
    };
    let components_for = VARIANCE_SHARES
        .iter()
        .map(|&share| VarianceThreshold { share, components: components_for(&eig.spectrum, total_variance, share) })
        .collect();
    Ok(Pca { artifact, components_for })
}

/// `+1` if the entry of largest magnitude (first one on ties) is non-negative, else `-1`.
fn sign_of_largest(v: &[f64]) -> f64 {
    let mut best = 0.0f64;
    for &x in v {
        if x.abs() > best.abs() {
            best = x;
        }
    }
    if best < 0.0 { -1.0 } else { 1.0 }
}

/// The smallest count of leading eigenvalues whose sum reaches `share * total`.
fn components_for(spectrum: &[f64], total: f64, share: f64) -> u32 {
    let mut sum = 0.0;
    for (i, v) in spectrum.iter().enumerate() {
        sum += v.max(0.0);
        if sum >= share * total {
            return i as u32 + 1;
        }
    }
    spectrum.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use fruits_formats::ModelId;

    #[test]
    fn thresholds_count_leading_eigenvalues() {
        let spectrum = [5.0, 3.0, 1.0, 0.5, 0.5];
        assert_eq!(components_for(&spectrum, 10.0, 0.8), 2);
        assert_eq!(components_for(&spectrum, 10.0, 0.81), 3);
        assert_eq!(components_for(&spectrum, 10.0, 0.99), 5);
    }

    #[test]
    fn signs_make_the_largest_entry_positive() {
        assert_eq!(sign_of_largest(&[0.1, -0.9, 0.5]), -1.0);
        assert_eq!(sign_of_largest(&[0.1, 0.9, -0.5]), 1.0);
    }

    #[test]
    fn finds_the_axis_of_a_line_and_refuses_bad_input() {
        let id = ModelId::of_bytes(b"m");
        let mut s = ScatterSketch::new(id, 3);
        let rows: Vec<f32> = (0..50).flat_map(|i| [1.0 + 2.0 * i as f32, 2.0 - i as f32, 3.0]).collect();
        s.add_rows(&rows).unwrap();
        let pca = finalize(&s, 1, Solver::Exact, 7, 0).unwrap();
        let c = pca.artifact.component(0);
        let r = 5f32.sqrt();
        assert!((c[0] - 2.0 / r).abs() < 1e-6 && (c[1] + 1.0 / r).abs() < 1e-6 && c[2].abs() < 1e-6, "{c:?}");
        assert!((pca.artifact.explained_variance_ratio[0] - 1.0).abs() < 1e-9);
        assert_eq!(pca.components_for[0].components, 1);
        assert!((pca.artifact.mean[0] - 50.0).abs() < 1e-5);
        assert_eq!(finalize(&s, 4, Solver::Exact, 1, 0).unwrap_err(), FinalizeError::BadK { k: 4, dim: 3 });
        let empty = ScatterSketch::new(id, 3);
        assert_eq!(finalize(&empty, 1, Solver::Exact, 1, 0).unwrap_err(), FinalizeError::TooFewRows(0));
    }
}
