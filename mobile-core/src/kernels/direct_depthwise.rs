//! Depthwise convolutions on x86-64 with their ReLU6 fused, [`DirectDepthwise`].
//!
//! tract runs MobileNetV2's 17 depthwise convolutions through our
//! channel-contiguous kernel (`depthwise_c_x86.rs`), then clamps each output in
//! a separate pass over memory (`Max` and `Min`, 8-9% of the model's time
//! once the convolutions were ours: BENCHMARKS.md). This operator drives the
//! same kernel itself, row by row, and has it clamp in registers before the
//! store: one pass instead of two. Borders get their own tap lists, so no
//! padded copy of the input is made.

use std::sync::Arc;

use tract_onnx::tract_core::internal::*;

use super::depthwise_c_x86::{DepthwiseCall, avx512, fma};
use super::direct_conv::{Simd, Spatial, eval_f32, f32_output_fact};

/// `y = clamp(depthwise(x, w) + bias)` over channel-last activations.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DirectDepthwise {
    shape: Spatial,
    simd: Simd,
    /// `[tap][channel]`, taps row by row.
    weights: Arc<Vec<f32>>,
    bias: Arc<Vec<f32>>,
    clamp: Option<(f32, f32)>,
    output_shape: TVec<usize>,
}

impl Eq for DirectDepthwise {}

impl DirectDepthwise {
    /// `weights` is `[tap][channel]` (taps row by row), `bias` one per channel.
    pub(crate) fn new(
        shape: Spatial,
        simd: Simd,
        weights: Vec<f32>,
        bias: Vec<f32>,
        clamp: Option<(f32, f32)>,
        output_shape: TVec<usize>,
    ) -> Self {
        let channels = shape.input[2];
        assert_eq!(weights.len(), shape.kernel[0] * shape.kernel[1] * channels, "one weight per tap and channel");
        assert_eq!(bias.len(), channels, "one bias per channel");
        Self { shape, simd, weights: Arc::new(weights), bias: Arc::new(bias), clamp, output_shape }
    }

    /// Computes the whole output, one output row at a time: the columns whose
    /// window lies inside the input in one kernel call, each border column in
    /// its own with only its valid taps.
    fn run(&self, x: &[f32], y: &mut [f32]) {
        let s = &self.shape;
        let ([h, w, c], [kh, kw], [sy, sx]) = (s.input, s.kernel, s.stride);
        let ([top, _], [left, _]) = (s.pad[0], s.pad[1]);
        let [oh, ow] = s.output();
        assert_eq!(x.len(), h * w * c, "input size");
        assert_eq!(y.len(), oh * ow * c, "output size");
        // Columns `inner.0..inner.1` read no padding.
        let first = left.div_ceil(sx).min(ow);
        let last = if w + left >= kw { ((w + left - kw) / sx + 1).min(ow) } else { 0 };
        let inner = (first, last.max(first));
        let (mut taps, mut offsets) = (Vec::with_capacity(kh * kw), Vec::with_capacity(kh * kw));
        for oy in 0..oh {
            let mut segment = |from: usize, len: usize| {
                // The window of output (oy, from) in unpadded coordinates.
                let (iy, ix) = ((oy * sy) as isize - top as isize, (from * sx) as isize - left as isize);
                taps.clear();
                offsets.clear();
                for ky in 0..kh {
                    let row = iy + ky as isize;
                    if !(0..h as isize).contains(&row) {
                        continue;
                    }
                    for kx in 0..kw {
                        let col = ix + kx as isize;
                        if (0..w as isize).contains(&col) {
                            taps.push(ky * kw + kx);
                            offsets.push((row * w as isize + col) * c as isize);
                        }
                    }
                }
                let at = (oy * ow + from) * c;
                let call = DepthwiseCall {
                    input: x.as_ptr(),
                    // SAFETY (offset): position (oy, from) is inside `y`.
                    output: unsafe { y.as_mut_ptr().add(at) },
                    kernel: self.weights.as_ptr(),
                    tap_indices: &taps,
                    offsets: &offsets,
                    bias: self.bias.as_ptr(),
                    channels: c,
                    k_stride: c,
                    len,
                    in_stride: (sx * c) as isize,
                    out_stride: c as isize,
                    clamp: self.clamp,
                };
                // SAFETY: every tap of the `len` positions reads inside `x`: the
                // offsets are of in-bounds pixels for the first position, and the
                // later ones (`from..from + len` all inside `inner` when `len > 1`)
                // move right by `sx` pixels with the whole window still inside.
                // The kernel writes `len` positions of `c` channels from `at`,
                // inside `y`; the weights hold every tap's `c` values and the
                // bias `c`. The simd set was found on this CPU (`Simd::native`).
                unsafe {
                    match self.simd {
                        Simd::Avx2Fma => fma::run_call(&call),
                        Simd::Avx512 => avx512::run_call(&call),
                    }
                }
            };
            for ox in 0..inner.0 {
                segment(ox, 1);
            }
            if inner.1 > inner.0 {
                segment(inner.0, inner.1 - inner.0);
            }
            for ox in inner.1..ow {
                segment(ox, 1);
            }
        }
    }
}

impl Op for DirectDepthwise {
    fn name(&self) -> StaticName {
        "FruitsDirectDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?}, {:?}, clamp {:?}", self.shape, self.simd, self.clamp)])
    }

    op_as_typed_op!();
}

impl EvalOp for DirectDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input_len = self.shape.input.iter().product();
        eval_f32(self, inputs, input_len, &self.output_shape, |x, y| self.run(x, y))
    }
}

impl TypedOp for DirectDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        f32_output_fact(inputs, &self.output_shape)
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::super::depthwise_c_x86::tests::value;
    use super::super::direct_conv::tests::available;
    use super::*;

    #[test]
    fn matches_the_formula_on_borders_strides_and_channel_tails() {
        for simd in available() {
            // MobileNetV2's two kinds (3x3, stride 1 padded all round; stride 2
            // padded below and right) on small images, with channel counts off
            // the vector width, and a wider kernel with uneven padding.
            for (input, kernel, stride, pad) in [
                ([9, 10, 19], [3, 3], [1, 1], [[1, 1], [1, 1]]),
                ([9, 10, 40], [3, 3], [2, 2], [[0, 1], [0, 1]]),
                ([8, 7, 3], [3, 3], [2, 2], [[0, 1], [0, 1]]),
                ([6, 13, 24], [3, 5], [1, 2], [[2, 0], [1, 2]]),
                ([2, 2, 16], [3, 3], [1, 1], [[1, 1], [1, 1]]),
            ] {
                let s = Spatial { input, kernel, stride, pad };
                let ([h, w, c], [oh, ow]) = (input, s.output());
                let taps = kernel[0] * kernel[1];
                let weights: Vec<f32> = (0..taps * c).map(|i| value(i, 0.11) - 0.2).collect();
                let bias: Vec<f32> = (0..c).map(|i| value(i, 0.5) - 0.4).collect();
                let x: Vec<f32> = (0..h * w * c).map(|i| value(i, 0.37)).collect();
                for clamp in [None, Some((0.0, 0.5))] {
                    let op = DirectDepthwise::new(s, simd, weights.clone(), bias.clone(), clamp, tvec!(oh, ow, c));
                    let mut y = vec![f32::NAN; oh * ow * c];
                    op.run(&x, &mut y);
                    for (oy, ox, ch) in (0..oh).flat_map(|a| (0..ow).flat_map(move |b| (0..c).map(move |d| (a, b, d))))
                    {
                        let mut sum = bias[ch] as f64;
                        for ky in 0..kernel[0] {
                            for kx in 0..kernel[1] {
                                let iy = (oy * stride[0] + ky).checked_sub(pad[0][0]).filter(|&v| v < h);
                                let ix = (ox * stride[1] + kx).checked_sub(pad[1][0]).filter(|&v| v < w);
                                if let (Some(iy), Some(ix)) = (iy, ix) {
                                    let wt = weights[(ky * kernel[1] + kx) * c + ch];
                                    sum += (x[(iy * w + ix) * c + ch] * wt) as f64;
                                }
                            }
                        }
                        let mut want = sum as f32;
                        if let Some((lo, hi)) = clamp {
                            want = want.clamp(lo, hi);
                        }
                        let got = y[(oy * ow + ox) * c + ch];
                        assert!(
                            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                            "{simd:?} {s:?} clamp {clamp:?}: ({oy}, {ox}, {ch}) is {got}, expected {want}"
                        );
                    }
                }
            }
        }
    }
}
