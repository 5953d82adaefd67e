//! The mergeable PCA sketch: row count, mean and exact centred scatter matrix.
//!
//! # Why this algorithm
//! Measured before any code (`../shared/DESIGN.md`, "PCA: facts measured before any code"):
//! a single-pass randomized Nystrom sketch with 160 columns missed the top-10
//! subspace by 1.7 degrees on real fruit embeddings and 4.3 degrees on synthetic ones
//! (variances off 1.7% and 6.8%), because these spectra decay slowly. For
//! `d = 1280` the exact centred scatter `S = sum (x - mean)(x - mean)^T` is only
//! 13 MB in `f64`: a fixed-size sketch, independent of the number of rows, that is
//! exact and mergeable. Sketches merge with Chan et al.'s parallel formula
//! `S = Sa + Sb + delta delta^T * na nb / (na + nb)`, `delta = mean_b - mean_a`;
//! the raw-moment form `E[xx^T] - mean mean^T` (Spark MLlib's) is never formed,
//! because it cancels catastrophically when the mean is large against the spread,
//! as with non-negative embeddings.
//!
//! Rows are consumed in blocks of [`BLOCK_ROWS`]; each block is centred on its own
//! mean (so its values are small) and written as column panels, its scatter is an
//! `f32` product over upper tiles by our own kernel (see [`scatter`](crate::scatter)
//! for why and the measured figures) added into the `f64` accumulator, and the block
//! is merged in with the same formula. Per-block `f32` rounding is independent
//! between blocks and averages out (tests compare with an `f64` path).
//!
//! Results are bit-identical whatever the thread count: tiles are independent tasks,
//! and sketches are merged in a caller-given order by [`merge_in_fixed_tree`].

use crate::scatter::{PanelBlock, TiledSymmetric};
use fruits_formats::codec::{self, FrameKind};
use fruits_formats::shard::MAX_DIM;
use fruits_formats::{FormatError, ModelId};
use serde::{Deserialize, Serialize};

/// Rows per block fed to the scatter kernel. Part of the algorithm's definition (it
/// fixes the rounding), hence a constant.
pub const BLOCK_ROWS: usize = 512;

/// The frame kind of a stored sketch.
pub const SKETCH_FRAME: FrameKind = FrameKind {
    name: "scatter sketch",
    magic: *b"FRUITSKT",
    version: 1,
    max_body_len: 4096 + 8 * (MAX_DIM as u64 + MAX_DIM as u64 * (MAX_DIM as u64 + 1) / 2),
};

/// Why sketches or rows cannot be combined.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SketchError {
    /// The sketches were computed from different embedding models.
    #[error("model mismatch: sketch is for {expected}, other is for {found}")]
    ModelMismatch {
        /// The model of the sketch being merged into.
        expected: ModelId,
        /// The model of the other sketch.
        found: ModelId,
    },
    /// The sketches or rows have different dimensions.
    #[error("dimension mismatch: expected {expected}, found {found}")]
    DimMismatch {
        /// The sketch's dimension.
        expected: u32,
        /// The other dimension.
        found: u32,
    },
}

thread_local! {
    /// The panel buffer of [`ScatterSketch::add_rows`], kept between calls so that a
    /// caller feeding rows block by block does not allocate a block each time. Taken
    /// and put back, never borrowed across the scatter update (rayon may run another
    /// `add_rows` on this thread meanwhile).
    static CENTRED: std::cell::Cell<Option<PanelBlock>> = const { std::cell::Cell::new(None) };
}

/// A mergeable summary of embeddings from one model: `n`, mean and scatter matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterSketch {
    model_id: ModelId,
    rows: u64,
    mean: Vec<f64>,
    scatter: TiledSymmetric,
}

/// The stored body of a sketch: the scatter as its packed upper triangle.
#[derive(Serialize, Deserialize)]
struct Stored {
    model_id: ModelId,
    dim: u32,
    rows: u64,
    mean: Vec<f64>,
    scatter_upper: Vec<f64>,
}

impl ScatterSketch {
    /// An empty sketch for embeddings of `dim` values from `model_id`.
    pub fn new(model_id: ModelId, dim: u32) -> Self {
        let d = dim as usize;
        Self { model_id, rows: 0, mean: vec![0.0; d], scatter: TiledSymmetric::zeros(d) }
    }

    /// The model the sketched embeddings come from.
    pub fn model_id(&self) -> ModelId {
        self.model_id
    }

    /// Values per embedding.
    pub fn dim(&self) -> u32 {
        self.mean.len() as u32
    }

    /// Number of rows sketched.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Mean of the rows sketched.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The sample covariance `S / (n - 1)`, full symmetric, row-major (`None` below
    /// two rows).
    pub fn covariance(&self) -> Option<Vec<f64>> {
        (self.rows >= 2).then(|| self.scatter.to_full(1.0 / (self.rows - 1) as f64))
    }

    /// Adds row-major rows of `dim` values, block by block.
    pub fn add_rows(&mut self, values: &[f32]) -> Result<(), SketchError> {
        let d = self.mean.len();
        if !values.len().is_multiple_of(d) {
            return Err(SketchError::DimMismatch { expected: d as u32, found: (values.len() % d) as u32 });
        }
        let mut centred = CENTRED.take().filter(|b| b.dim() == d).unwrap_or_else(|| PanelBlock::new(d));
        for block in values.chunks(BLOCK_ROWS * d) {
            let nb = (block.len() / d) as f64;
            let mut block_mean = vec![0.0f64; d];
            for row in block.chunks_exact(d) {
                block_mean.iter_mut().zip(row).for_each(|(m, &x)| *m += x as f64);
            }
            block_mean.iter_mut().for_each(|m| *m /= nb);
            centred.set_centred(block, &block_mean);
            let (c, delta) = self.absorb_moments(nb, &block_mean);
            self.scatter.add_block(&centred, c, &delta);
        }
        CENTRED.set(Some(centred));
        Ok(())
    }

    /// Merges `other` into this sketch (Chan et al.), refusing other models or dims.
    pub fn merge(&mut self, other: &ScatterSketch) -> Result<(), SketchError> {
        if other.model_id != self.model_id {
            return Err(SketchError::ModelMismatch { expected: self.model_id, found: other.model_id });
        }
        if other.dim() != self.dim() {
            return Err(SketchError::DimMismatch { expected: self.dim(), found: other.dim() });
        }
        if other.rows == 0 {
            return Ok(());
        }
        let (c, delta) = self.absorb_moments(other.rows as f64, &other.mean);
        self.scatter.add_merged(&other.scatter, c, &delta);
        Ok(())
    }

    /// Updates `rows` and `mean` for `nb` more rows of mean `mean_b`; returns the
    /// scatter correction factor `na nb / (na + nb)` and `delta = mean_b - mean_a`.
    fn absorb_moments(&mut self, nb: f64, mean_b: &[f64]) -> (f64, Vec<f64>) {
        let na = self.rows as f64;
        let total = na + nb;
        let delta: Vec<f64> = mean_b.iter().zip(&self.mean).map(|(b, a)| b - a).collect();
        self.mean.iter_mut().zip(&delta).for_each(|(m, dl)| *m += dl * (nb / total));
        self.rows += nb as u64;
        (na * nb / total, delta)
    }

    /// The stored form: one [`SKETCH_FRAME`] frame.
    pub fn encode(&self) -> Result<Vec<u8>, FormatError> {
        let stored = Stored {
            model_id: self.model_id,
            dim: self.dim(),
            rows: self.rows,
            mean: self.mean.clone(),
            scatter_upper: self.scatter.to_packed_upper(),
        };
        codec::encode_framed(&SKETCH_FRAME, &stored)
    }

    /// Decodes a stored sketch, refusing anything inconsistent or non-finite.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let s: Stored = codec::decode_framed(&SKETCH_FRAME, bytes)?;
        let bad = |reason: &str| FormatError::Inconsistent { kind: SKETCH_FRAME.name, reason: reason.into() };
        if s.dim == 0 || s.dim > MAX_DIM || s.mean.len() != s.dim as usize {
            return Err(bad("dim out of range or mean of the wrong length"));
        }
        if !s.mean.iter().chain(&s.scatter_upper).all(|v| v.is_finite()) {
            return Err(bad("non-finite value"));
        }
        let scatter = TiledSymmetric::from_packed_upper(s.dim as usize, &s.scatter_upper)
            .ok_or_else(|| bad("scatter of the wrong length"))?;
        Ok(Self { model_id: s.model_id, rows: s.rows, mean: s.mean, scatter })
    }
}

/// Reduces `items` with `merge` over a fixed balanced binary tree (split at the
/// middle, left before right), running independent subtrees in parallel with
/// `rayon::join`. The result depends only on the order of `items`, never on
/// scheduling; `None` when `items` is empty.
pub fn merge_in_fixed_tree<T, L, M>(len: usize, leaf: &L, merge: &M) -> Option<T>
where
    T: Send,
    L: Fn(usize) -> T + Sync,
    M: Fn(T, T) -> T + Sync,
{
    fn go<T: Send, L: Fn(usize) -> T + Sync, M: Fn(T, T) -> T + Sync>(lo: usize, hi: usize, leaf: &L, merge: &M) -> T {
        if hi - lo == 1 {
            return leaf(lo);
        }
        let mid = lo + (hi - lo) / 2;
        let (a, b) = rayon::join(|| go(lo, mid, leaf, merge), || go(mid, hi, leaf, merge));
        merge(a, b)
    }
    (len > 0).then(|| go(0, len, leaf, merge))
}

#[cfg(test)]
mod tests;
