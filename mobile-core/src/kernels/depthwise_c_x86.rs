//! x86-64 kernels for tract's channel-contiguous depthwise convolution
//! ([`DepthwiseCF32`]'s contract): `len` output positions of `channels`
//! contiguous channels each, output = bias + every tap's kernel x input.
//!
//! Each kernel walks blocks of one vector of channels (8 lanes with AVX2, 16
//! with AVX-512). For a block it loads the kernel's taps into registers once,
//! then sweeps the positions six at a time, one accumulator each:
//! one load and one fused multiply-add per tap, and the output written once.
//! The tap count is a const generic for the counts a 3x3 kernel has (9 inside
//! the image, fewer on its borders) so the taps stay in registers; other counts
//! take a loop that reloads them. Sums are fused (FMA), so results differ from
//! tract's portable loop by rounding only: the ONNX Runtime parity test bounds
//! the whole model at 1e-4.
//!
//! [`DepthwiseCF32`]: tract_onnx::tract_core::tract_linalg::routines::DepthwiseCF32

use tract_onnx::tract_core::tract_linalg::isa::{Arch, Isa, IsaReq};
use tract_onnx::tract_core::tract_linalg::routines::{Func, Routine, RoutineFactory};

/// Name of the AVX2 + FMA kernel in tract's registry.
pub(super) const AVX2_FMA: &str = "fruits_x86_64_fma_depthwise_c_f32";
/// Name of the AVX-512 kernel in tract's registry.
pub(super) const AVX512: &str = "fruits_x86_64_avx512_depthwise_c_f32";
/// Every kernel this file registers.
pub(super) const NAMES: &[&str] = &[AVX512, AVX2_FMA];

/// Largest tap count with a register-resident kernel (a 3x3 window).
const MAX_RESIDENT_TAPS: usize = 9;

/// One call: [`DepthwiseCF32`]'s arguments, and a clamp.
#[derive(Clone, Copy)]
pub(super) struct DepthwiseCall<'a> {
    pub input: *const f32,
    pub output: *mut f32,
    pub kernel: *const f32,
    pub tap_indices: &'a [usize],
    pub offsets: &'a [isize],
    pub bias: *const f32,
    pub channels: usize,
    pub k_stride: usize,
    pub len: usize,
    pub in_stride: isize,
    pub out_stride: isize,
    /// Clamp each output to `lo..=hi` (a fused ReLU6; a NaN stays NaN).
    pub clamp: Option<(f32, f32)>,
}

/// One kernel per instruction set: `$lanes` channels in a `$vec`, loaded,
/// stored and fused-multiply-added by the intrinsics named, `$positions`
/// accumulators (6 measured best for both: AVX2 0.97 / 0.69 / 0.83 ms of
/// depthwise per image at 4 / 6 / 8, AVX-512 0.57 / 0.58 / 0.70 ms).
macro_rules! depthwise_c_kernel {
    ($module:ident, $features:literal, $lanes:literal, $positions:literal, $vec:ident, $zero:ident, $load:ident, $store:ident, $fma:ident, $set1:ident, $max:ident, $min:ident) => {
        pub(super) mod $module {
            use std::arch::x86_64::*;

            use super::{DepthwiseCall, MAX_RESIDENT_TAPS};

            /// Output positions accumulated together: independent FMA chains
            /// that hide the instruction's latency.
            const POSITIONS: usize = $positions;

            /// The [`DepthwiseCF32`](tract_onnx::tract_core::tract_linalg::routines::DepthwiseCF32)
            /// entry point.
            ///
            /// # Safety
            /// That type's contract, and the CPU must offer the instruction sets
            /// this kernel is compiled for.
            #[allow(clippy::too_many_arguments)]
            #[target_feature(enable = $features)]
            pub(crate) unsafe fn run(
                input: *const f32,
                output: *mut f32,
                kernel: *const f32,
                tap_indices: &[usize],
                offsets: &[isize],
                bias: *const f32,
                channels: usize,
                k_stride: usize,
                len: usize,
                in_stride: isize,
                out_stride: isize,
            ) {
                let call = DepthwiseCall {
                    input,
                    output,
                    kernel,
                    tap_indices,
                    offsets,
                    bias,
                    channels,
                    k_stride,
                    len,
                    in_stride,
                    out_stride,
                    clamp: None,
                };
                // SAFETY: the caller's contract.
                unsafe { run_call(&call) }
            }

            /// One call, with its clamp.
            ///
            /// # Safety
            /// As for [`run`].
            #[target_feature(enable = $features)]
            pub(crate) unsafe fn run_call(call: &DepthwiseCall<'_>) {
                let (offsets, channels) = (call.offsets, call.channels);
                let taps: Vec<isize> = call.tap_indices.iter().map(|&t| (t * call.k_stride) as isize).collect();
                let run = Run {
                    input: call.input,
                    output: call.output,
                    kernel: call.kernel,
                    bias: call.bias,
                    len: call.len,
                    in_stride: call.in_stride,
                    out_stride: call.out_stride,
                    clamp: call.clamp,
                };
                let mut c = 0;
                while c + $lanes <= channels {
                    // SAFETY: channels `c..c + $lanes` are within the caller's contract.
                    unsafe {
                        match taps.len() {
                            9 => run.resident::<9>(&taps, offsets, c),
                            8 => run.resident::<8>(&taps, offsets, c),
                            7 => run.resident::<7>(&taps, offsets, c),
                            6 => run.resident::<6>(&taps, offsets, c),
                            5 => run.resident::<5>(&taps, offsets, c),
                            4 => run.resident::<4>(&taps, offsets, c),
                            3 => run.resident::<3>(&taps, offsets, c),
                            2 => run.resident::<2>(&taps, offsets, c),
                            1 => run.resident::<1>(&taps, offsets, c),
                            _ => run.reloaded(&taps, offsets, c),
                        }
                    }
                    c += $lanes;
                }
                // SAFETY: as above, for the channels left over.
                unsafe { run.scalar(&taps, offsets, c, channels) };
            }

            /// The pointers and geometry shared by every channel block.
            struct Run {
                input: *const f32,
                output: *mut f32,
                kernel: *const f32,
                bias: *const f32,
                len: usize,
                in_stride: isize,
                out_stride: isize,
                clamp: Option<(f32, f32)>,
            }

            impl Run {
                /// `a`, clamped when the run clamps.
                #[target_feature(enable = $features)]
                fn clamped(&self, a: $vec) -> $vec {
                    match self.clamp {
                        // The accumulator is the second operand, so a NaN stays NaN.
                        Some((lo, hi)) => $min($set1(hi), $max($set1(lo), a)),
                        None => a,
                    }
                }

                /// Channels `c..c + $lanes` with the `N` taps held in registers.
                #[target_feature(enable = $features)]
                unsafe fn resident<const N: usize>(&self, taps: &[isize], offsets: &[isize], c: usize) {
                    debug_assert!(N <= MAX_RESIDENT_TAPS && taps.len() == N && offsets.len() == N);
                    unsafe {
                        let mut k = [$zero(); N];
                        let mut off = [0isize; N];
                        for t in 0..N {
                            k[t] = $load(self.kernel.offset(taps[t]).add(c));
                            off[t] = offsets[t] + c as isize;
                        }
                        let b = $load(self.bias.add(c));
                        let mut i = 0;
                        while i + POSITIONS <= self.len {
                            let mut acc = [b; POSITIONS];
                            let x = self.input.offset(i as isize * self.in_stride);
                            for t in 0..N {
                                for (p, a) in acc.iter_mut().enumerate() {
                                    *a = $fma($load(x.offset(p as isize * self.in_stride + off[t])), k[t], *a);
                                }
                            }
                            for (p, a) in acc.iter().enumerate() {
                                $store(self.output.offset((i + p) as isize * self.out_stride).add(c), self.clamped(*a));
                            }
                            i += POSITIONS;
                        }
                        while i < self.len {
                            let x = self.input.offset(i as isize * self.in_stride);
                            let mut a = b;
                            for t in 0..N {
                                a = $fma($load(x.offset(off[t])), k[t], a);
                            }
                            $store(self.output.offset(i as isize * self.out_stride).add(c), self.clamped(a));
                            i += 1;
                        }
                    }
                }

                /// Channels `c..c + $lanes` for any tap count, reloading the taps
                /// at every position.
                #[target_feature(enable = $features)]
                unsafe fn reloaded(&self, taps: &[isize], offsets: &[isize], c: usize) {
                    unsafe {
                        for i in 0..self.len {
                            let x = self.input.offset(i as isize * self.in_stride).add(c);
                            let mut a = $load(self.bias.add(c));
                            for (&t, &o) in taps.iter().zip(offsets) {
                                a = $fma($load(x.offset(o)), $load(self.kernel.offset(t).add(c)), a);
                            }
                            $store(self.output.offset(i as isize * self.out_stride).add(c), self.clamped(a));
                        }
                    }
                }

                /// Channels `from..to` (fewer than a vector), one at a time.
                #[target_feature(enable = $features)]
                unsafe fn scalar(&self, taps: &[isize], offsets: &[isize], from: usize, to: usize) {
                    unsafe {
                        for i in 0..self.len {
                            let x = self.input.offset(i as isize * self.in_stride);
                            let y = self.output.offset(i as isize * self.out_stride);
                            for c in from..to {
                                let mut a = *self.bias.add(c);
                                for (&t, &o) in taps.iter().zip(offsets) {
                                    a = (*x.offset(o).add(c)).mul_add(*self.kernel.offset(t).add(c), a);
                                }
                                *y.add(c) = match self.clamp {
                                    Some((lo, hi)) if !a.is_nan() => a.clamp(lo, hi),
                                    _ => a,
                                };
                            }
                        }
                    }
                }
            }
        }
    };
}

depthwise_c_kernel! { fma, "avx2,fma", 8, 6, __m256, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps,
_mm256_set1_ps, _mm256_max_ps, _mm256_min_ps }
depthwise_c_kernel! { avx512, "avx512f", 16, 6, __m512, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps,
_mm512_set1_ps, _mm512_max_ps, _mm512_min_ps }

inventory::submit! {
    Routine {
        func: Func::DepthwiseC,
        arch: Some(Arch::X86_64),
        isa: IsaReq::ANY.needing(&[Isa::X86_64Avx2, Isa::X86_64Fma]),
        boost: 0,
        round_trip: false,
        factory: RoutineFactory::DepthwiseCF32 { name: AVX2_FMA, run: fma::run },
    }
}

inventory::submit! {
    Routine {
        func: Func::DepthwiseC,
        arch: Some(Arch::X86_64),
        isa: IsaReq::ANY.needing(&[Isa::X86_64Avx512f]),
        boost: 0,
        round_trip: false,
        factory: RoutineFactory::DepthwiseCF32 { name: AVX512, run: avx512::run },
    }
}

#[cfg(test)]
pub(super) mod tests {
    use tract_onnx::tract_core::tract_linalg::routines::DepthwiseCF32;

    use super::*;

    /// One call's geometry, with every stride free to differ from the dense case.
    struct Case {
        taps: usize,
        channels: usize,
        k_stride: usize,
        len: usize,
        in_stride: isize,
        out_stride: isize,
    }

    /// Varied test values with exact binary fractions among them (shared by
    /// the other kernels' tests).
    pub(in crate::kernels) fn value(i: usize, scale: f32) -> f32 {
        ((i as f32 * scale).sin() * 1.7).round() / 4.0 + (i % 7) as f32 * 0.03
    }

    /// Runs `kernel` on `case` and the plain formula beside it, returning
    /// (kernel output, reference output) over the whole output buffer.
    fn run(kernel: DepthwiseCF32, case: &Case) -> (Vec<f32>, Vec<f32>) {
        // Taps read every other kernel row, and sit at scattered input offsets.
        let tap_indices: Vec<usize> = (0..case.taps).map(|t| t * 2 + 1).collect();
        let offsets: Vec<isize> = (0..case.taps).map(|t| (t as isize * 3 - 5) * case.channels as isize).collect();
        let lo = offsets.iter().min().copied().unwrap_or(0).min(0);
        let hi = offsets.iter().max().copied().unwrap_or(0) + (case.len as isize) * case.in_stride;
        let input: Vec<f32> = (0..(hi - lo) as usize + case.channels + 1).map(|i| value(i, 0.37)).collect();
        let kernel_values: Vec<f32> = (0..(case.taps * 2 + 2) * case.k_stride).map(|i| value(i, 0.11)).collect();
        let bias: Vec<f32> = (0..case.channels).map(|i| value(i, 0.5) - 0.4).collect();
        let out_len = (case.len as isize * case.out_stride) as usize + case.channels;
        let sentinel = -777.0;
        let mut got = vec![sentinel; out_len];
        let mut want = vec![sentinel; out_len];
        let origin = (-lo) as usize;
        for i in 0..case.len {
            for c in 0..case.channels {
                let mut sum = bias[c] as f64;
                for (&k, &o) in tap_indices.iter().zip(&offsets) {
                    let x = input[(origin as isize + i as isize * case.in_stride + o) as usize + c];
                    sum += (kernel_values[k * case.k_stride + c] * x) as f64;
                }
                want[(i as isize * case.out_stride) as usize + c] = sum as f32;
            }
        }
        // SAFETY: the buffers above are sized for every read and write the contract allows.
        unsafe {
            kernel(
                input.as_ptr().add(origin),
                got.as_mut_ptr(),
                kernel_values.as_ptr(),
                &tap_indices,
                &offsets,
                bias.as_ptr(),
                case.channels,
                case.k_stride,
                case.len,
                case.in_stride,
                case.out_stride,
            )
        };
        (got, want)
    }

    fn check(name: &str, kernel: DepthwiseCF32) {
        let mut cases = 0;
        for taps in [1, 2, 4, 6, 9, 10, 25] {
            for channels in [3, 8, 16, 19, 40, 96] {
                for len in [1, 3, 4, 9] {
                    for (k_extra, in_extra, out_extra) in [(0, 0, 0), (5, 2, 3)] {
                        let case = Case {
                            taps,
                            channels,
                            k_stride: channels + k_extra,
                            len,
                            in_stride: (channels + in_extra) as isize * 2,
                            out_stride: (channels + out_extra) as isize,
                        };
                        let (got, want) = run(kernel, &case);
                        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert!(
                                (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                                "{name}: taps {taps}, channels {channels}, len {len}, strides ({}, {}, {}): \
                                 element {j} is {g}, expected {w}",
                                case.k_stride,
                                case.in_stride,
                                case.out_stride
                            );
                        }
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 7 * 6 * 4 * 2);
    }

    #[test]
    fn avx2_fma_kernel_matches_the_formula_and_writes_nothing_else() {
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
            eprintln!("skipped: this CPU has no AVX2 + FMA");
            return;
        }
        check(AVX2_FMA, fma::run);
    }

    #[test]
    fn avx512_kernel_matches_the_formula_and_writes_nothing_else() {
        if !std::is_x86_feature_detected!("avx512f") {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        check(AVX512, avx512::run);
    }

    #[test]
    fn tract_selects_the_widest_kernel_this_cpu_runs() {
        use tract_onnx::prelude::DatumType;
        use tract_onnx::tract_core::tract_linalg::isa;
        use tract_onnx::tract_core::tract_linalg::routines;
        let chosen = routines::best_for(Func::DepthwiseC, DatumType::F32, &isa::native()).map(|r| r.name());
        let expected = if std::is_x86_feature_detected!("avx512f") {
            Some(AVX512)
        } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            Some(AVX2_FMA)
        } else {
            None
        };
        assert_eq!(chosen, expected);
        // Asking for a machine one rung lower picks the AVX2 kernel.
        let avx2 = isa::IsaSet::ladder(Arch::X86_64, 2);
        assert_eq!(routines::best_for(Func::DepthwiseC, DatumType::F32, &avx2).map(|r| r.name()), Some(AVX2_FMA));
    }
}
