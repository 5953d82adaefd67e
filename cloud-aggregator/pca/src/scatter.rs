//! The symmetric `d x d` scatter accumulator, stored as upper tiles, and the
//! block kernel that feeds it.
//!
//! The matrix is cut into [`TILE`] x [`TILE`] tiles and only tiles on or above the
//! diagonal are kept (in `f64`). Every update ([`TiledSymmetric::add_block`],
//! [`TiledSymmetric::add_merged`]) runs one rayon task per tile; each tile is
//! written by exactly one task and its terms are always added in the same order, so
//! the result is bit-identical whatever the number of threads.
//!
//! # Why this kernel
//! A block's product `X^T X` is computed by our own register-blocked kernel rather
//! than a general GEMM. Measured on the dev VM (AMD EPYC, AVX-512; one thread, CPU
//! time, the 55 upper tiles of one 512 x 1280 block): `matrixmultiply::sgemm` per
//! tile (its AVX-512 16 x 16 kernel) ran at 206 GFLOP/s, this 8 x 32 kernel at
//! 272 GFLOP/s. Two things make the difference: the block is written once, while it
//! is centred, as column panels of [`PANEL`] values ([`PanelBlock`]), so both
//! operands of every tile are already contiguous and nothing is re-packed (sgemm
//! re-packed both 128-column panels for each of the 55 tiles: 9% of the whole run's
//! CPU time in `perf`); and micro-tiles wholly below the diagonal are skipped (7%
//! of the flops at d = 1280). With the `finalize` change in `eigen.rs`,
//! `aggregator run` on 200,000 x 1280 rows went from 2.99 to 2.55 s of user CPU time
//! (docs/benchmarks-history.md, issue 3, 2026-11-24).
//!
//! Every entry of a block's product is one fused multiply-add chain over the rows in
//! order, starting from zero, in `f32`, then widened to `f64` once per block. The
//! AVX-512 kernel and the portable one (used without AVX-512, compiled for AVX2+FMA
//! when the CPU has them) evaluate exactly that chain, so sketches are bit-identical
//! across these CPUs too (the AVX-512 one is tested against it). Without hardware
//! FMA (x86-64 CPUs older than 2013) the portable kernel stays correct but
//! `f32::mul_add` is slow.

use rayon::prelude::*;

/// Side of a tile. Part of the algorithm's definition: changing it changes the
/// rounding of results (never their accuracy), so it is a constant.
pub const TILE: usize = 128;

/// Columns per panel of a [`PanelBlock`]: one 512-bit vector of `f32`.
const PANEL: usize = 16;
/// Rows of a micro-tile: product rows accumulated together in registers.
const MR: usize = 8;
/// Columns of a micro-tile: two panels (8 x 32 = 16 AVX-512 accumulators).
const NR: usize = 2 * PANEL;

/// A block of centred rows laid out for [`TiledSymmetric::add_block`]: column panel
/// `p` (columns `p * PANEL..(p + 1) * PANEL`) holds those values of every row, row
/// after row, so a kernel reads each operand as one contiguous stream. Columns are
/// zero-padded to a whole number of [`NR`]-wide micro-tiles (zeros add nothing).
#[derive(Debug, Clone)]
pub struct PanelBlock {
    dim: usize,
    rows: usize,
    values: Vec<f32>,
}

impl PanelBlock {
    /// An empty block for rows of `dim` values (reused across blocks).
    pub fn new(dim: usize) -> Self {
        Self { dim, rows: 0, values: Vec::new() }
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Replaces the contents with `rows` (row-major, `dim` wide) minus `mean`,
    /// computed in `f64` and rounded to `f32`.
    ///
    /// Written panel by panel, so that every write is sequential and each row is
    /// read in [`PANEL`]-wide pieces at a fixed stride. (Measured against writing
    /// row by row: the same wall time within noise on the 200,000-row benchmark;
    /// centring stays about 5% of `aggregator run`'s CPU time in `perf`.)
    pub fn set_centred(&mut self, rows: &[f32], mean: &[f64]) {
        let d = self.dim;
        assert_eq!(rows.len() % d, 0, "block is not a whole number of rows");
        assert_eq!(mean.len(), d, "mean dimension");
        let n = rows.len() / d;
        self.rows = n;
        if n == 0 {
            self.values.clear();
            return;
        }
        // Every value is written below (padding with zeros), so the old contents
        // need no clearing.
        self.values.resize(d.next_multiple_of(NR) * n, 0.0);
        for (p, panel) in self.values.chunks_exact_mut(n * PANEL).enumerate() {
            let columns = (p * PANEL).min(d)..((p + 1) * PANEL).min(d);
            let width = columns.len();
            let ms = &mean[columns.clone()];
            for (out, row) in panel.chunks_exact_mut(PANEL).zip(rows.chunks_exact(d)) {
                for ((o, &x), &m) in out.iter_mut().zip(&row[columns.clone()]).zip(ms) {
                    *o = (x as f64 - m) as f32;
                }
                out[width..].fill(0.0);
            }
        }
    }

    /// The start of column `col`'s values in row 0 (`col` is a multiple of [`MR`]).
    fn column(&self, col: usize) -> *const f32 {
        self.values[(col / PANEL) * self.rows * PANEL + col % PANEL..].as_ptr()
    }
}

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

    /// Adds `block^T block + c * delta delta^T` (the block already centred on its
    /// own mean). The product is computed in `f32` per tile (see the module docs) and
    /// widened to `f64` as it is added.
    pub fn add_block(&mut self, block: &PanelBlock, c: f64, delta: &[f64]) {
        assert_eq!(block.dim, self.dim, "block dimension");
        assert_eq!(delta.len(), self.dim, "delta dimension");
        if block.rows == 0 {
            return;
        }
        let kernel = micro_kernel();
        self.tiles.par_iter_mut().for_each_init(
            || vec![0.0f32; TILE * TILE],
            |product, tile| {
                tile_product(block, tile, product, kernel);
                for i in 0..tile.rows {
                    let di = c * delta[tile.r0 + i];
                    let cols = tile.upper_cols(i);
                    let out = &mut tile.values[i * tile.cols..(i + 1) * tile.cols][cols.clone()];
                    let prod = &product[i * TILE..i * TILE + tile.cols][cols.clone()];
                    let dj = &delta[tile.c0..tile.c0 + tile.cols][cols];
                    for ((o, &p), &dj) in out.iter_mut().zip(prod).zip(dj) {
                        *o += p as f64 + di * dj;
                    }
                }
            },
        );
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

/// A micro-kernel: `out[i * ldo + j] = sum over rows r of a[r * PANEL + i] *
/// b(r, j)` for `i < MR`, `j < NR`, where `b(r, j)` is `b0[r * PANEL + j]` for
/// `j < PANEL` and `b1[r * PANEL + j - PANEL]` after, each sum one FMA chain in row
/// order. Callers guarantee `rows` rows of both panels and an `MR x NR` output.
type MicroKernel = unsafe fn(rows: usize, a: *const f32, b0: *const f32, b1: *const f32, out: *mut f32, ldo: usize);

/// The fastest kernel this CPU runs, chosen at run time (the build stays portable).
fn micro_kernel() -> MicroKernel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return micro_avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return micro_avx2_fma;
        }
    }
    micro_portable
}

/// The `f32` product of one tile, row-major with stride [`TILE`] into `product`
/// (entries below the matrix diagonal are left unspecified).
fn tile_product(block: &PanelBlock, tile: &Tile, product: &mut [f32], kernel: MicroKernel) {
    let panel = block.rows * PANEL;
    for ib in (0..tile.rows).step_by(MR) {
        for jb in (0..tile.cols).step_by(NR) {
            if tile.r0 + ib >= tile.c0 + jb + NR {
                continue; // every entry of this micro-tile is below the diagonal
            }
            let b0 = block.column(tile.c0 + jb);
            // SAFETY: columns r0 + ib .. + MR and c0 + jb .. + NR are below
            // `dim.next_multiple_of(NR)` (tiles start at multiples of TILE, a multiple
            // of NR and MR, and ib, jb round the tile's size up to MR, NR), so the
            // panels read exist and hold `rows` rows each; the output rows ib .. + MR
            // and columns jb .. + NR lie inside the TILE x TILE `product`.
            unsafe {
                kernel(
                    block.rows,
                    block.column(tile.r0 + ib),
                    b0,
                    b0.add(panel),
                    product[ib * TILE + jb..].as_mut_ptr(),
                    TILE,
                );
            }
        }
    }
}

/// The AVX-512 micro-kernel: 16 `zmm` accumulators, per row two vector loads and
/// eight broadcasts for 16 FMAs. Same arithmetic as [`micro_portable`].
///
/// # Safety
/// The CPU supports AVX-512F, and the pointers satisfy [`MicroKernel`]'s contract.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn micro_avx512(rows: usize, a: *const f32, b0: *const f32, b1: *const f32, out: *mut f32, ldo: usize) {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_ps(); 2 * MR];
    // SAFETY: every read is at r * PANEL + (< PANEL) with r < rows and every write at
    // i * ldo + (< NR) with i < MR, inside the ranges the caller guarantees.
    unsafe {
        for r in 0..rows {
            let x0 = _mm512_loadu_ps(b0.add(r * PANEL));
            let x1 = _mm512_loadu_ps(b1.add(r * PANEL));
            let ar = a.add(r * PANEL);
            for i in 0..MR {
                let ai = _mm512_set1_ps(*ar.add(i));
                acc[2 * i] = _mm512_fmadd_ps(ai, x0, acc[2 * i]);
                acc[2 * i + 1] = _mm512_fmadd_ps(ai, x1, acc[2 * i + 1]);
            }
        }
        for i in 0..MR {
            _mm512_storeu_ps(out.add(i * ldo), acc[2 * i]);
            _mm512_storeu_ps(out.add(i * ldo + PANEL), acc[2 * i + 1]);
        }
    }
}

/// [`micro_portable`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA, and the pointers satisfy [`MicroKernel`]'s contract.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn micro_avx2_fma(rows: usize, a: *const f32, b0: *const f32, b1: *const f32, out: *mut f32, ldo: usize) {
    // SAFETY: forwarded contract.
    unsafe { micro_portable(rows, a, b0, b1, out, ldo) }
}

/// The reference micro-kernel in plain Rust (`f32::mul_add`, vectorised by the
/// compiler where the target has FMA, as on aarch64).
///
/// # Safety
/// The pointers satisfy [`MicroKernel`]'s contract.
#[inline(always)]
unsafe fn micro_portable(rows: usize, a: *const f32, b0: *const f32, b1: *const f32, out: *mut f32, ldo: usize) {
    let mut acc = [[0.0f32; NR]; MR];
    // SAFETY: the caller guarantees `rows` rows of PANEL values behind a, b0 and b1
    // (`a` at an offset of at most PANEL - MR) and MR rows of NR values behind `out`.
    unsafe {
        for r in 0..rows {
            let ar = std::slice::from_raw_parts(a.add(r * PANEL), MR);
            let x0 = std::slice::from_raw_parts(b0.add(r * PANEL), PANEL);
            let x1 = std::slice::from_raw_parts(b1.add(r * PANEL), PANEL);
            for (acc_i, &ai) in acc.iter_mut().zip(ar) {
                let (lo, hi) = acc_i.split_at_mut(PANEL);
                lo.iter_mut().zip(x0).for_each(|(s, &x)| *s = ai.mul_add(x, *s));
                hi.iter_mut().zip(x1).for_each(|(s, &x)| *s = ai.mul_add(x, *s));
            }
        }
        for (i, acc_i) in acc.iter().enumerate() {
            std::slice::from_raw_parts_mut(out.add(i * ldo), NR).copy_from_slice(acc_i);
        }
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

    /// `rows` as a block, unchanged (centred on zero).
    fn block(rows: &[f32], d: usize) -> PanelBlock {
        let mut b = PanelBlock::new(d);
        b.set_centred(rows, &vec![0.0; d]);
        b
    }

    #[test]
    fn block_product_matches_a_naive_f64_product_on_ragged_tiles() {
        let d = TILE + 37;
        let x: Vec<f32> = (0..9 * d).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let delta: Vec<f64> = (0..d).map(|i| (i as f64).sin()).collect();
        let mut m = TiledSymmetric::zeros(d);
        m.add_block(&block(&x, d), 0.5, &delta);
        let got = m.to_full(1.0);
        let want = reference(&x, d, 0.5, &delta);
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-4, "max abs diff {worst}");
    }

    #[test]
    fn a_reused_block_holds_only_its_new_rows() {
        let d = TILE + 37; // padded to a whole number of micro-tiles
        let x: Vec<f32> = (0..9 * d).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let mean = vec![0.0; d];
        let mut reused = PanelBlock::new(d);
        reused.set_centred(&x, &mean);
        reused.set_centred(&x[..4 * d], &mean);
        let mut fresh = PanelBlock::new(d);
        fresh.set_centred(&x[..4 * d], &mean);
        assert_eq!(reused.values, fresh.values);
        reused.set_centred(&[], &mean);
        assert_eq!((reused.rows, reused.values.len()), (0, 0));
    }

    #[test]
    fn packed_upper_round_trips() {
        let d = 2 * TILE + 3;
        let mut m = TiledSymmetric::zeros(d);
        let x: Vec<f32> = (0..4 * d).map(|i| (i % 13) as f32).collect();
        m.add_block(&block(&x, d), 1.0, &vec![0.25; d]);
        let packed = m.to_packed_upper();
        assert_eq!(TiledSymmetric::from_packed_upper(d, &packed), Some(m));
        assert_eq!(TiledSymmetric::from_packed_upper(d, &packed[1..]), None);
    }

    #[test]
    fn the_dispatched_kernel_is_bit_identical_to_the_portable_one() {
        let d = 2 * TILE + 40;
        let n = 700;
        let x: Vec<f32> = (0..n * d).map(|i| (((i * 7919) % 1013) as f32 / 500.0 - 1.0) * 1e-3).collect();
        let b = block(&x, d);
        let with = |kernel: MicroKernel| {
            let mut bits = Vec::new();
            let mut p = vec![0.0f32; TILE * TILE];
            for t in &TiledSymmetric::zeros(d).tiles {
                tile_product(&b, t, &mut p, kernel);
                for i in 0..t.rows {
                    bits.extend(t.upper_cols(i).map(|j| p[i * TILE + j].to_bits()));
                }
            }
            bits
        };
        assert!(with(micro_kernel()) == with(micro_portable), "kernels disagree");
    }
}
