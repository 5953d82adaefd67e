//! The register-blocked inner loop of [`DirectConv`](super::DirectConv): a
//! tile of up to `MR` output positions by two vectors of output channels.
//!
//! Per reduction step (an input channel, or a (tap, channel) pair of a
//! spatial kernel) the tile loads one row of the packed weight panel (two
//! vectors) and, for each of its positions, broadcasts that position's input
//! value straight from the activation tensor and fuses two multiply-adds into
//! its accumulators. The activations are read where they lie, in either
//! layout: nothing is packed per run, which is what tract's matrix product
//! spends 14% of the model's time on (BENCHMARKS.md). Tiles of `MR`
//! positions keep `2 * MR` accumulators in registers (24 of AVX-512's 32, 12
//! of AVX2's 16); a tail takes tiles of 4, 2 and 1.

/// One call's operands.
pub(super) struct Tile<'a> {
    /// The first position's input origin.
    pub x: *const f32,
    /// Step from one position's origin to the next.
    pub x_pos: isize,
    /// Where each reduction step reads, from a position's origin.
    pub steps: Steps<'a>,
    /// The packed weight panel: one row of `NR` output channels per step.
    pub w: *const f32,
    /// `NR` biases.
    pub bias: *const f32,
    /// Clamp the outputs to `lo..=hi` (a fused ReLU6); `None`: leave them.
    pub clamp: Option<(f32, f32)>,
    /// The output tile's first row: `NR` contiguous channels per position.
    pub y: *mut f32,
    /// Step from one output row to the next.
    pub y_pos: usize,
}

/// The input offsets of a tile's reduction steps, from a position's origin.
#[derive(Clone, Copy)]
pub(super) enum Steps<'a> {
    /// `count` steps, `stride` apart (a pointwise convolution's channels).
    Uniform { count: usize, stride: isize },
    /// Any offsets (a spatial kernel's taps and channels).
    Table(&'a [isize]),
}

/// One kernel per instruction set: `$lanes` channels per vector, tiles of
/// `$rows` positions, loaded, stored, broadcast, multiply-added and clamped by
/// the intrinsics named.
macro_rules! tile_kernel {
    ($module:ident, $features:literal, $lanes:literal, $rows:literal,
     $load:ident, $store:ident, $set1:ident, $fma:ident, $max:ident, $min:ident) => {
        pub(crate) mod $module {
            use std::arch::x86_64::*;

            use super::{Steps, Tile};

            /// Output channels per panel: two vectors.
            pub(crate) const NR: usize = 2 * $lanes;
            /// Positions per full tile.
            pub(crate) const MR: usize = $rows;

            /// Runs `rows` positions (any count) against one weight panel.
            ///
            /// # Safety
            /// Every input value [`Tile`] describes (each position's origin
            /// plus each step's offset), `steps * NR` weights and `NR` biases
            /// must be readable, and its `rows` output rows of `NR` writable;
            /// the CPU must offer the instruction sets this kernel is compiled
            /// for.
            #[target_feature(enable = $features)]
            pub(crate) unsafe fn run(rows: usize, t: &Tile<'_>) {
                // One instance per kind of steps, so that uniform ones compile to a stride
                // (read from a table, the whole model took about 1.3x longer: 12-02).
                // SAFETY: the caller's contract.
                unsafe {
                    match t.steps {
                        Steps::Uniform { count, stride } => {
                            run_with(rows, t, || (0..count).map(move |k| k as isize * stride))
                        }
                        Steps::Table(offsets) => run_with(rows, t, || offsets.iter().copied()),
                    }
                }
            }

            /// [`run`], reading the steps from `steps()`.
            #[target_feature(enable = $features)]
            unsafe fn run_with<I: Iterator<Item = isize>>(rows: usize, t: &Tile<'_>, steps: impl Fn() -> I) {
                let mut done = 0;
                while done < rows {
                    let left = rows - done;
                    // SAFETY: positions `done..done + step` are within `rows`.
                    unsafe {
                        let x = t.x.offset(done as isize * t.x_pos);
                        let y = t.y.add(done * t.y_pos);
                        done += if left >= MR {
                            tile::<MR, I>(t, x, y, steps())
                        } else if left >= 4 {
                            tile::<4, I>(t, x, y, steps())
                        } else if left >= 2 {
                            tile::<2, I>(t, x, y, steps())
                        } else {
                            tile::<1, I>(t, x, y, steps())
                        };
                    }
                }
            }

            /// `R` positions from `x`, written at `y`; returns `R`.
            #[target_feature(enable = $features)]
            unsafe fn tile<const R: usize, I: Iterator<Item = isize>>(
                t: &Tile<'_>,
                x: *const f32,
                y: *mut f32,
                steps: I,
            ) -> usize {
                // SAFETY: as for `run`, for these `R` positions.
                unsafe {
                    let mut lo_half = [$load(t.bias); R];
                    let mut hi_half = [$load(t.bias.add($lanes)); R];
                    let mut w = t.w;
                    for offset in steps {
                        let w0 = $load(w);
                        let w1 = $load(w.add($lanes));
                        let xk = x.offset(offset);
                        for r in 0..R {
                            let v = $set1(*xk.offset(r as isize * t.x_pos));
                            lo_half[r] = $fma(v, w0, lo_half[r]);
                            hi_half[r] = $fma(v, w1, hi_half[r]);
                        }
                        w = w.add(NR);
                    }
                    if let Some((lo, hi)) = t.clamp {
                        // The accumulator is the second operand, so a NaN stays NaN.
                        let (lo, hi) = ($set1(lo), $set1(hi));
                        for r in 0..R {
                            lo_half[r] = $min(hi, $max(lo, lo_half[r]));
                            hi_half[r] = $min(hi, $max(lo, hi_half[r]));
                        }
                    }
                    for r in 0..R {
                        $store(y.add(r * t.y_pos), lo_half[r]);
                        $store(y.add(r * t.y_pos + $lanes), hi_half[r]);
                    }
                }
                R
            }
        }
    };
}

tile_kernel! { fma, "avx2,fma", 8, 6, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps,
_mm256_fmadd_ps, _mm256_max_ps, _mm256_min_ps }
tile_kernel! { avx512, "avx512f", 16, 12, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps,
_mm512_fmadd_ps, _mm512_max_ps, _mm512_min_ps }
