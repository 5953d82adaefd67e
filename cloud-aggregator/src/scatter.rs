//! The symmetric `d x d` scatter accumulator, stored as upper tiles, and the
//! block kernel that feeds it.
//!
//! The matrix is cut into [`TILE`] x [`TILE`] tiles and only tiles on or above the
//! diagonal are kept (in `f64`). Every update ([`TiledSymmetric::add_block`],
//! [`TiledSymmetric::add_merged`]) runs one rayon task per tile; each tile is
//! written by exactly one task and its terms are always added in the same order, so
//! the result is bit-identical whatever the number of threads.

use matrixmultiply::sgemm;
use rayon::prelude::*;

/// Side of a tile. Part of the algorithm's definition: changing it changes the
/// rounding of results (never their accuracy), so it is a constant.
pub const TILE: usize = 128;

/// One stored tile: rows `r0..r0 + rows`, columns `c0..c0 + cols`, row-major values.
#[derive(Debug, Clone, PartialEq)]
struct Tile {
    r0: usize,
    c0: usize,
    rows: usize,
    cols: usize,
    values: Vec<f64>,
}

impl Tile {
    /// Columns of row `i` on or above the matrix diagonal (entries below it stay 0).
    fn upper_cols(&self, i: usize) -> std::ops::Range<usize> {
        (self.r0 + i).saturating_sub(self.c0).min(self.cols)..self.cols
    }
}

/// The upper triangle (with diagonal) of a symmetric `dim x dim` matrix in `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct TiledSymmetric {
    dim: usize,
    tiles: Vec<Tile>,
}

impl TiledSymmetric {
    /// A zero matrix of side `dim`.
    pub fn zeros(dim: usize) -> Self {
        let starts: Vec<usize> = (0..dim).step_by(TILE).collect();
        let side = |s: usize| TILE.min(dim - s);
        let tiles = starts
            .iter()
            .enumerate()
            .flat_map(|(i, &r0)| starts[i..].iter().map(move |&c0| (r0, c0)))
            .map(|(r0, c0)| Tile { r0, c0, rows: side(r0), cols: side(c0), values: vec![0.0; side(r0) * side(c0)] })
            .collect();
        Self { dim, tiles }
    }

    /// Adds `centred^T centred + c * delta delta^T`, where `centred` is a row-major
    /// block of `dim`-wide rows (already centred on its own mean). The product is an
    /// `f32` GEMM per tile, widened to `f64` as it is added.
    pub fn add_block(&mut self, centred: &[f32], c: f64, delta: &[f64]) {
        let d = self.dim;
        assert_eq!(centred.len() % d, 0, "block is not a whole number of rows");
        assert_eq!(delta.len(), d, "delta dimension");
        let rows = centred.len() / d;
        self.tiles.par_iter_mut().for_each_init(Vec::new, |product, tile| {
            product.clear();
            product.resize(tile.rows * tile.cols, 0.0f32);
            // SAFETY: A is columns r0..r0+rows of the block read as its transpose
            // (element (i, r) at r * d + r0 + i), B is columns c0..c0+cols (element
            // (r, j) at r * d + c0 + j); both stay inside `centred` because
            // r < rows and r0 + i, c0 + j < d. C is `product`, rows x cols row-major.
            unsafe {
                sgemm(
                    tile.rows,
                    rows,
                    tile.cols,
                    1.0,
                    centred.as_ptr().add(tile.r0),
                    1,
                    d as isize,
                    centred.as_ptr().add(tile.c0),
                    d as isize,
                    1,
                    0.0,
                    product.as_mut_ptr(),
                    tile.cols as isize,
                    1,
                );
            }
            for i in 0..tile.rows {
                let di = c * delta[tile.r0 + i];
                let cols = tile.upper_cols(i);
                let out = &mut tile.values[i * tile.cols..(i + 1) * tile.cols][cols.clone()];
                let prod = &product[i * tile.cols..(i + 1) * tile.cols][cols.clone()];
                let dj = &delta[tile.c0..tile.c0 + tile.cols][cols];
                for ((o, &p), &dj) in out.iter_mut().zip(prod).zip(dj) {
                    *o += p as f64 + di * dj;
                }
            }
        });
    }

    /// Adds `other + c * delta delta^T` (Chan et al.'s merge of two scatters).
    pub fn add_merged(&mut self, other: &TiledSymmetric, c: f64, delta: &[f64]) {
        assert_eq!(self.dim, other.dim, "dimension");
        self.tiles.par_iter_mut().zip(&other.tiles).for_each(|(tile, theirs)| {
            for i in 0..tile.rows {
                let di = c * delta[tile.r0 + i];
                let cols = tile.upper_cols(i);
                let row = i * tile.cols;
                let range = row + cols.start..row + cols.end;
                let dj = &delta[tile.c0..tile.c0 + tile.cols][cols];
                for ((o, &t), &dj) in tile.values[range.clone()].iter_mut().zip(&theirs.values[range]).zip(dj) {
                    *o += t + di * dj;
                }
            }
        });
    }

    /// The full symmetric matrix, row-major, each entry multiplied by `scale`.
    pub fn to_full(&self, scale: f64) -> Vec<f64> {
        let d = self.dim;
        let mut full = vec![0.0; d * d];
        for t in &self.tiles {
            for i in 0..t.rows {
                for j in 0..t.cols {
                    let (r, c) = (t.r0 + i, t.c0 + j);
                    if c >= r {
                        let v = t.values[i * t.cols + j] * scale;
                        full[r * d + c] = v;
                        full[c * d + r] = v;
                    }
                }
            }
        }
        full
    }

    /// The upper triangle, row by row (`dim * (dim + 1) / 2` values).
    pub fn to_packed_upper(&self) -> Vec<f64> {
        let full = self.to_full(1.0);
        let d = self.dim;
        (0..d).flat_map(|r| full[r * d + r..(r + 1) * d].iter().copied()).collect()
    }

    /// Rebuilds a matrix from [`to_packed_upper`](Self::to_packed_upper)'s output;
    /// `None` if the length does not fit `dim`.
    pub fn from_packed_upper(dim: usize, packed: &[f64]) -> Option<Self> {
        if packed.len() != dim * (dim + 1) / 2 {
            return None;
        }
        let mut out = Self::zeros(dim);
        let mut starts = Vec::with_capacity(dim);
        let mut at = 0;
        for r in 0..dim {
            starts.push(at);
            at += dim - r;
        }
        for t in &mut out.tiles {
            for i in 0..t.rows {
                for j in 0..t.cols {
                    let (r, c) = (t.r0 + i, t.c0 + j);
                    if c >= r {
                        t.values[i * t.cols + j] = packed[starts[r] + c - r];
                    }
                }
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive f64 reference of `x^T x + c delta delta^T`.
    fn reference(x: &[f32], d: usize, c: f64, delta: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; d * d];
        for row in x.chunks(d) {
            for i in 0..d {
                for j in 0..d {
                    out[i * d + j] += row[i] as f64 * row[j] as f64;
                }
            }
        }
        for i in 0..d {
            for j in 0..d {
                out[i * d + j] += c * delta[i] * delta[j];
            }
        }
        out
    }

    #[test]
    fn block_product_matches_a_naive_f64_product_on_ragged_tiles() {
        let d = TILE + 37;
        let x: Vec<f32> = (0..9 * d).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let delta: Vec<f64> = (0..d).map(|i| (i as f64).sin()).collect();
        let mut m = TiledSymmetric::zeros(d);
        m.add_block(&x, 0.5, &delta);
        let got = m.to_full(1.0);
        let want = reference(&x, d, 0.5, &delta);
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-4, "max abs diff {worst}");
    }

    #[test]
    fn packed_upper_round_trips() {
        let d = 2 * TILE + 3;
        let mut m = TiledSymmetric::zeros(d);
        let x: Vec<f32> = (0..4 * d).map(|i| (i % 13) as f32).collect();
        m.add_block(&x, 1.0, &vec![0.25; d]);
        let packed = m.to_packed_upper();
        assert_eq!(TiledSymmetric::from_packed_upper(d, &packed), Some(m));
        assert_eq!(TiledSymmetric::from_packed_upper(d, &packed[1..]), None);
    }
}
