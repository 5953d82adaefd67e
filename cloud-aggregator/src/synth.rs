//! Synthetic embeddings with a known spectrum, for tests and benchmarks.
//!
//! Rows are `mean + z^T diag(sqrt(lambda)) Q^T` with `z` standard normal, `Q` a
//! random orthogonal basis and `lambda_i = 1 / i`: a slowly decaying spectrum like
//! real MobileNetV2 embeddings', around a large positive mean in `[0.5, 1.5)`.
//! Everything is drawn from seeded ChaCha generators, so a seed names a data set.

use fruits_formats::shard::{MAX_ROWS, Push};
use fruits_formats::{Encoding, FormatError, ModelId, Shard, ShardBuilder};
use matrixmultiply::sgemm;
use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

/// A seeded synthetic distribution of `dim`-d embeddings.
#[derive(Debug, Clone)]
pub struct Synthetic {
    dim: usize,
    mean: Vec<f32>,
    /// Row `i` is `sqrt(lambda_i) q_i^T`, row-major `dim x dim`.
    factor: Vec<f32>,
}

impl Synthetic {
    /// The distribution named by `dim` and `seed`.
    pub fn new(dim: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mean = (0..dim).map(|_| 0.5 + rng.random::<f32>()).collect();
        let gaussian = DMatrix::from_fn(dim, dim, |_, _| rng.sample::<f64, _>(StandardNormal));
        let q = gaussian.qr().q();
        let factor = (0..dim)
            .flat_map(|i| {
                let s = Self::eigenvalue(i).sqrt();
                q.column(i).iter().map(move |&v| (v * s) as f32).collect::<Vec<_>>()
            })
            .collect();
        Self { dim, mean, factor }
    }

    /// The population variance along the `i`-th (0-based) principal axis.
    pub fn eigenvalue(i: usize) -> f64 {
        1.0 / (i + 1) as f64
    }

    /// The population mean.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// `n` rows, row-major, drawn with `seed`.
    pub fn rows(&self, n: usize, seed: u64) -> Vec<f32> {
        let d = self.dim;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let z: Vec<f32> = (0..n * d).map(|_| rng.sample(StandardNormal)).collect();
        let mut out: Vec<f32> = (0..n).flat_map(|_| self.mean.iter().copied()).collect();
        // SAFETY: z is n x d, factor d x d and out n x d, all row-major and contiguous.
        unsafe {
            sgemm(
                n,
                d,
                d,
                1.0,
                z.as_ptr(),
                d as isize,
                1,
                self.factor.as_ptr(),
                d as isize,
                1,
                1.0,
                out.as_mut_ptr(),
                d as isize,
                1,
            );
        }
        out
    }

    /// `shards` shards holding `rows` rows in all (as even as possible), keyed in the
    /// storage layout ([`fruits_formats::layout::incoming_key`]). Shard `i` is drawn
    /// from seed `seed + 1 + i`.
    pub fn shards(
        &self,
        model_id: ModelId,
        rows: usize,
        shards: usize,
        seed: u64,
    ) -> Result<Vec<(String, Shard)>, FormatError> {
        let dim = u32::try_from(self.dim).map_err(|_| FormatError::LimitExceeded {
            what: "dim",
            value: self.dim as u64,
            limit: u64::from(u32::MAX),
        })?;
        (0..shards)
            .into_par_iter()
            .map(|i| {
                let n = rows / shards + usize::from(i < rows % shards);
                let (device, batch_id) = (format!("synth-{:03}", i % 16), format!("batch-{i:05}"));
                let mut batch = ShardBuilder::new(model_id, dim, Encoding::F32, device.as_str()).with_max_rows(n);
                for row in self.rows(n, seed + 1 + i as u64).chunks_exact(self.dim) {
                    if batch.push(row, None, 0)? == Push::Full {
                        return Err(FormatError::LimitExceeded {
                            what: "rows",
                            value: n as u64,
                            limit: MAX_ROWS.into(),
                        });
                    }
                }
                Ok((fruits_formats::layout::incoming_key(&device, &batch_id), batch.finish(batch_id)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_the_promised_mean_and_total_variance() {
        let s = Synthetic::new(16, 1);
        let n = 20_000;
        let x = s.rows(n, 2);
        let mut mean = vec![0.0f64; 16];
        x.chunks(16).for_each(|r| mean.iter_mut().zip(r).for_each(|(m, &v)| *m += v as f64 / n as f64));
        let total: f64 =
            x.chunks(16).map(|r| r.iter().zip(&mean).map(|(&v, m)| (v as f64 - m).powi(2)).sum::<f64>()).sum::<f64>()
                / n as f64;
        let want: f64 = (0..16).map(Synthetic::eigenvalue).sum();
        assert!((total - want).abs() / want < 0.03, "total variance {total} vs {want}");
        assert!(mean.iter().zip(s.mean()).all(|(a, &b)| (a - b as f64).abs() < 0.03));
    }
}
