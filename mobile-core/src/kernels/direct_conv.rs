//! Convolutions on x86-64 as a Fruits operator, [`DirectConv`]: register
//! tiles read straight from the activations, no per-run packing or im2col.
//!
//! After decluttering, each of MobileNetV2's 34 pointwise (1x1) convolutions
//! is a tract `EinSum` (activations x a constant `[out, in]` matrix) followed
//! by its bias `Add` and, for the expansions, ReLU6's `Max` and `Min`; its
//! first layer is a 3x3 stride-2 `Conv`. tract's x86 codegen turns the former
//! into a pack of the activations and a packed matrix product (79% of the
//! model's time on this project's Intel host, the pack alone 14%), the latter
//! into a pad, an im2col and a product (BENCHMARKS.md). [`rewrite`] replaces
//! each such chain, before tract optimises the graph, by one [`DirectConv`]
//! that packs its weights once, reads the activations where they lie
//! (channel-last or channel-first, whichever layout tract chose) and applies
//! bias and clamp in registers (`tiles.rs`). Nothing changes on a CPU without
//! AVX2 and FMA, nor on ARM, where this module is not compiled and tract's
//! NEON kernels run.

mod rewrite;
mod tiles;

use std::sync::Arc;

use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::tract_linalg::isa::{self, Isa};

pub(crate) use rewrite::rewrite;

/// The instruction set a [`DirectConv`] runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Simd {
    /// 8 lanes, tiles of 6 positions by 16 channels.
    Avx2Fma,
    /// 16 lanes, tiles of 12 positions by 32 channels.
    Avx512,
}

impl Simd {
    /// The widest set this CPU offers, as tract sees it (`TRACT_CPU_ISA`
    /// masks apply), or `None` without AVX2 and FMA.
    pub(crate) fn native() -> Option<Simd> {
        let native = isa::native();
        if native.has(Isa::X86_64Avx512f) {
            Some(Simd::Avx512)
        } else if native.has(Isa::X86_64Avx2) && native.has(Isa::X86_64Fma) {
            Some(Simd::Avx2Fma)
        } else {
            None
        }
    }

    /// Output channels per weight panel.
    fn panel_width(self) -> usize {
        match self {
            Simd::Avx2Fma => tiles::fma::NR,
            Simd::Avx512 => tiles::avx512::NR,
        }
    }

    /// Positions per tile.
    fn tile_rows(self) -> usize {
        match self {
            Simd::Avx2Fma => tiles::fma::MR,
            Simd::Avx512 => tiles::avx512::MR,
        }
    }

    /// # Safety
    /// [`tiles::fma::run`]'s contract, for this set's kernel.
    unsafe fn run(self, rows: usize, tile: &tiles::Tile) {
        // SAFETY: the caller's contract; `DirectConv`s are only built for a
        // `Simd` that `native()` found on this CPU.
        unsafe {
            match self {
                Simd::Avx2Fma => tiles::fma::run(rows, tile),
                Simd::Avx512 => tiles::avx512::run(rows, tile),
            }
        }
    }
}

/// How a `positions x channels` matrix lies in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Channels contiguous: `[position][channel]` (HWC).
    ChannelLast,
    /// Positions contiguous: `[channel][position]` (CHW).
    ChannelFirst,
}

impl Layout {
    /// (step to the next position, step to the next channel) in a matrix of
    /// `positions x channels`.
    fn steps(self, positions: usize, channels: usize) -> (usize, usize) {
        match self {
            Layout::ChannelLast => (channels, 1),
            Layout::ChannelFirst => (1, positions),
        }
    }
}

/// A 1x1 convolution: `positions` x `inputs` activations, in either layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pointwise {
    /// Output positions (height x width).
    pub positions: usize,
    /// Input channels.
    pub inputs: usize,
    /// The activations' layout.
    pub x: Layout,
    /// The output's layout.
    pub y: Layout,
}

/// A spatial convolution over channel-last (HWC) activations, written
/// channel-last, without dilation or groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spatial {
    /// Input height, width and channels.
    pub input: [usize; 3],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Vertical and horizontal stride.
    pub stride: [usize; 2],
    /// Zero rows above and below, zero columns left and right.
    pub pad: [[usize; 2]; 2],
}

impl Spatial {
    /// The padded input's height and width.
    fn padded(&self) -> [usize; 2] {
        [self.input[0] + self.pad[0][0] + self.pad[0][1], self.input[1] + self.pad[1][0] + self.pad[1][1]]
    }

    /// Output height and width.
    pub(crate) fn output(&self) -> [usize; 2] {
        let p = self.padded();
        [(p[0] - self.kernel[0]) / self.stride[0] + 1, (p[1] - self.kernel[1]) / self.stride[1] + 1]
    }

    /// Reduction steps: every (tap row, tap column, input channel).
    fn depth(&self) -> usize {
        self.kernel[0] * self.kernel[1] * self.input[2]
    }

    /// Where each reduction step reads from a position's origin: tap rows,
    /// tap columns, then channels.
    fn offsets(&self) -> Vec<isize> {
        let ([kh, kw], [_, pw], c) = (self.kernel, self.padded(), self.input[2]);
        let taps = (0..kh).flat_map(|ky| (0..kw).map(move |kx| (ky * pw + kx) * c));
        taps.flat_map(|tap| (0..c).map(move |ch| (tap + ch) as isize)).collect()
    }

    /// Zero-pads `x` (unless there is no padding).
    fn pad_input<'x>(&self, x: &'x [f32]) -> std::borrow::Cow<'x, [f32]> {
        if self.pad == [[0; 2]; 2] {
            return x.into();
        }
        let ([h, w, c], [_, pw]) = (self.input, self.padded());
        let mut padded = vec![0f32; self.padded()[0] * pw * c];
        for (row, from) in x.chunks_exact(w * c).enumerate().take(h) {
            let at = ((row + self.pad[0][0]) * pw + self.pad[1][0]) * c;
            padded[at..at + w * c].copy_from_slice(from);
        }
        padded.into()
    }
}

/// Which convolution a [`DirectConv`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A 1x1 convolution.
    Pointwise(Pointwise),
    /// A spatial one.
    Spatial(Spatial),
}

impl Shape {
    /// Reduction steps per output value.
    fn depth(&self) -> usize {
        match self {
            Shape::Pointwise(p) => p.inputs,
            Shape::Spatial(s) => s.depth(),
        }
    }

    /// Output positions.
    fn positions(&self) -> usize {
        match self {
            Shape::Pointwise(p) => p.positions,
            Shape::Spatial(s) => s.output().iter().product(),
        }
    }

    /// Input values.
    fn input_len(&self) -> usize {
        match self {
            Shape::Pointwise(p) => p.positions * p.inputs,
            Shape::Spatial(s) => s.input.iter().product(),
        }
    }
}

/// `y = clamp(conv(x, w) + bias)`: a convolution with its bias and activation
/// fused. See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DirectConv {
    shape: Shape,
    /// Output channels.
    outputs: usize,
    simd: Simd,
    /// Weights in panels of `panel_width` output channels: one row of
    /// `panel_width` per reduction step, zero past the last channel.
    panels: Arc<Vec<f32>>,
    /// Biases, zero-padded like the panels.
    bias: Arc<Vec<f32>>,
    clamp: Option<(f32, f32)>,
    /// Input offsets of a spatial shape's reduction steps ([`Spatial::offsets`]).
    offsets: Arc<Vec<isize>>,
    /// The output tensor's shape (the fused chain's last output).
    output_shape: TVec<usize>,
}

impl Eq for DirectConv {}

impl DirectConv {
    /// Packs `weight(output channel, reduction step)` for `simd`; a spatial
    /// shape's steps run over tap rows, tap columns, then input channels.
    pub(crate) fn new(
        shape: Shape,
        simd: Simd,
        weight: impl Fn(usize, usize) -> f32,
        bias: &[f32],
        clamp: Option<(f32, f32)>,
        output_shape: TVec<usize>,
    ) -> Self {
        let (outputs, depth) = (bias.len(), shape.depth());
        let nr = simd.panel_width();
        let padded = outputs.div_ceil(nr) * nr;
        let mut panels = Vec::with_capacity(padded * depth);
        for panel in (0..padded).step_by(nr) {
            for k in 0..depth {
                panels.extend((panel..panel + nr).map(|n| if n < outputs { weight(n, k) } else { 0.0 }));
            }
        }
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(padded, 0.0);
        let offsets = Arc::new(match shape {
            Shape::Pointwise(_) => Vec::new(),
            Shape::Spatial(s) => s.offsets(),
        });
        Self {
            shape,
            outputs,
            simd,
            panels: Arc::new(panels),
            bias: Arc::new(padded_bias),
            clamp,
            offsets,
            output_shape,
        }
    }

    /// The tiles' reduction steps, and the furthest one's offset.
    fn steps(&self) -> (tiles::Steps<'_>, usize) {
        match self.shape {
            Shape::Pointwise(p) => {
                let (_, stride) = p.x.steps(p.positions, p.inputs);
                (
                    tiles::Steps::Uniform { count: p.inputs, stride: stride as isize },
                    p.inputs.saturating_sub(1) * stride,
                )
            }
            Shape::Spatial(_) => {
                (tiles::Steps::Table(&self.offsets), self.offsets.iter().max().map_or(0, |&o| o as usize))
            }
        }
    }

    /// Computes the whole output: `x` and `y` as the shape says.
    fn run(&self, x: &[f32], y: &mut [f32]) {
        assert_eq!(x.len(), self.shape.input_len(), "input size");
        assert_eq!(y.len(), self.shape.positions() * self.outputs, "output size");
        let mr = self.simd.tile_rows();
        let mut scratch = vec![0f32; mr * self.simd.panel_width()];
        let reads = self.steps();
        match self.shape {
            Shape::Pointwise(p) => {
                let (x_pos, _) = p.x.steps(p.positions, p.inputs);
                for m0 in (0..p.positions).step_by(mr) {
                    let rows = mr.min(p.positions - m0);
                    self.run_row_tiles(x, reads, m0 * x_pos, x_pos, (m0, rows), p.y, y, &mut scratch);
                }
            }
            Shape::Spatial(s) => {
                let x = s.pad_input(x);
                let ([oh, ow], [_, pw], c) = (s.output(), s.padded(), s.input[2]);
                let x_pos = s.stride[1] * c;
                for oy in 0..oh {
                    for ox in (0..ow).step_by(mr) {
                        let origin = (oy * s.stride[0] * pw + ox * s.stride[1]) * c;
                        let rows = mr.min(ow - ox);
                        self.run_row_tiles(
                            &x,
                            reads,
                            origin,
                            x_pos,
                            (oy * ow + ox, rows),
                            Layout::ChannelLast,
                            y,
                            &mut scratch,
                        );
                    }
                }
            }
        }
    }

    /// Output positions `m0..m0 + rows` (`positions`), whose input origins
    /// are `origin`, `origin + x_pos`, ...: one tile per weight panel.
    /// `(steps, furthest)` is [`Self::steps`].
    #[allow(clippy::too_many_arguments)]
    fn run_row_tiles(
        &self,
        x: &[f32],
        (steps, furthest): (tiles::Steps<'_>, usize),
        origin: usize,
        x_pos: usize,
        (m0, rows): (usize, usize),
        layout: Layout,
        y: &mut [f32],
        scratch: &mut [f32],
    ) {
        let (nr, n, positions) = (self.simd.panel_width(), self.outputs, self.shape.positions());
        // Bounds the kernel relies on: the last position's furthest read, the last row written.
        assert!(origin + (rows - 1) * x_pos + furthest < x.len(), "tile reads past the input");
        assert!(m0 + rows <= positions, "tile writes past the output");
        for (p, n0) in (0..n).step_by(nr).enumerate() {
            let cols = nr.min(n - n0);
            let direct = layout == Layout::ChannelLast && cols == nr;
            let tile = tiles::Tile {
                // SAFETY (offsets): asserted above; panel `p` and its biases exist.
                x: unsafe { x.as_ptr().add(origin) },
                x_pos: x_pos as isize,
                steps,
                w: unsafe { self.panels.as_ptr().add(p * self.shape.depth() * nr) },
                bias: unsafe { self.bias.as_ptr().add(p * nr) },
                clamp: self.clamp,
                y: if direct { unsafe { y.as_mut_ptr().add(m0 * n + n0) } } else { scratch.as_mut_ptr() },
                y_pos: if direct { n } else { nr },
            };
            // SAFETY: the reads are bounded above; the panels hold
            // `depth * nr` weights each (`new`); the tile writes `rows`
            // rows of `nr` channels either into `y` (channel-last, a whole
            // panel: rows `m0..m0 + rows` at stride `n`, columns `n0..n0 + nr`)
            // or into `scratch` (`mr * nr`).
            unsafe { self.simd.run(rows, &tile) };
            if !direct {
                for r in 0..rows {
                    let from = &scratch[r * nr..r * nr + cols];
                    match layout {
                        Layout::ChannelLast => y[(m0 + r) * n + n0..][..cols].copy_from_slice(from),
                        Layout::ChannelFirst => {
                            for (j, v) in from.iter().enumerate() {
                                y[(n0 + j) * positions + m0 + r] = *v;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Op for DirectConv {
    fn name(&self) -> StaticName {
        "FruitsDirectConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?} to {} channels, {:?}, clamp {:?}", self.shape, self.outputs, self.simd, self.clamp)])
    }

    op_as_typed_op!();
}

impl EvalOp for DirectConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        eval_f32(self, inputs, self.shape.input_len(), &self.output_shape, |x, y| self.run(x, y))
    }
}

impl TypedOp for DirectConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        f32_output_fact(inputs, &self.output_shape)
    }

    as_op!();
}

/// Evaluates a one-input f32 operator whose `run` reads `input_len` values
/// and writes every value of an `output_shape` tensor.
pub(super) fn eval_f32(
    op: &dyn Op,
    inputs: TVec<TValue>,
    input_len: usize,
    output_shape: &[usize],
    run: impl FnOnce(&[f32], &mut [f32]),
) -> TractResult<TVec<TValue>> {
    let input = args_1!(inputs);
    let input = input.try_as_plain_ram()?;
    let x = input.as_slice::<f32>()?;
    ensure!(x.len() == input_len, "{}: input of {} values, expected {input_len}", op.name(), x.len());
    // SAFETY: `run` writes every element.
    let mut output = unsafe { Tensor::uninitialized::<f32>(output_shape)? };
    run(x, output.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?);
    Ok(tvec!(output.into_tvalue()))
}

/// The output fact of such an operator.
pub(super) fn f32_output_fact(inputs: &[&TypedFact], output_shape: &[usize]) -> TractResult<TVec<TypedFact>> {
    ensure!(inputs.len() == 1 && inputs[0].datum_type == f32::datum_type(), "one f32 input");
    Ok(tvec!(f32::fact(output_shape)))
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::depthwise_c_x86::tests::value;
    use super::*;

    /// Every instruction set this CPU runs.
    pub(in crate::kernels) fn available() -> Vec<Simd> {
        let mut sets = Vec::new();
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            sets.push(Simd::Avx2Fma);
        }
        if std::is_x86_feature_detected!("avx512f") {
            sets.push(Simd::Avx512);
        }
        if sets.is_empty() {
            eprintln!("skipped: this CPU has no AVX2 + FMA");
        }
        sets
    }

    fn weight(n: usize, k: usize) -> f32 {
        value(n * 31 + k, 0.11) - 0.2
    }

    /// Runs `shape` with `outputs` channels on every instruction set, against
    /// `reference(x, bias, m, n)` (the unclamped sum for position `m`, channel
    /// `n`, in f64) at output index `at(m, n)`.
    fn check(
        shape: Shape,
        outputs: usize,
        reference: impl Fn(&[f32], &[f32], usize, usize) -> f64,
        at: impl Fn(usize, usize) -> usize,
    ) -> usize {
        let mut checked = 0;
        for simd in available() {
            for clamp in [None, Some((0.0, 0.5))] {
                let bias: Vec<f32> = (0..outputs).map(|n| value(n, 0.5) - 0.4).collect();
                let positions = shape.positions();
                let op = DirectConv::new(shape, simd, weight, &bias, clamp, tvec!(positions, outputs));
                let x: Vec<f32> = (0..shape.input_len()).map(|i| value(i, 0.37)).collect();
                let mut y = vec![f32::NAN; positions * outputs];
                op.run(&x, &mut y);
                for m in 0..positions {
                    for n in 0..outputs {
                        let mut want = reference(&x, &bias, m, n) as f32;
                        if let Some((lo, hi)) = clamp {
                            want = want.clamp(lo, hi);
                        }
                        let got = y[at(m, n)];
                        assert!(
                            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                            "{simd:?} {shape:?} clamp {clamp:?}: ({m}, {n}) is {got}, expected {want}"
                        );
                    }
                }
                checked += 1;
            }
        }
        checked
    }

    #[test]
    fn pointwise_matches_the_formula_for_every_layout_tail_and_clamp() {
        let mut checked = 0;
        for positions in [1, 3, 5, 12, 13, 49, 50] {
            for (inputs, outputs) in [(1, 1), (3, 16), (16, 24), (24, 40), (32, 33), (7, 64)] {
                for x in [Layout::ChannelLast, Layout::ChannelFirst] {
                    for y in [Layout::ChannelLast, Layout::ChannelFirst] {
                        let p = Pointwise { positions, inputs, x, y };
                        let (xp, xk) = x.steps(positions, inputs);
                        let (yp, yn) = y.steps(positions, outputs);
                        let reference = |x: &[f32], bias: &[f32], m: usize, n: usize| {
                            let dot: f64 = (0..inputs).map(|k| (x[m * xp + k * xk] * weight(n, k)) as f64).sum();
                            bias[n] as f64 + dot
                        };
                        checked += check(Shape::Pointwise(p), outputs, reference, |m, n| m * yp + n * yn);
                    }
                }
            }
        }
        assert!(checked == 0 || checked >= 7 * 6 * 4 * 2);
    }

    #[test]
    fn spatial_matches_the_formula_with_stride_padding_and_tails() {
        let mut checked = 0;
        // MobileNetV2's first layer (at a smaller size), odd sizes, uneven padding.
        for (input, kernel, stride, pad, outputs) in [
            ([9, 11, 3], [3, 3], [2, 2], [[0, 1], [0, 1]], 32),
            ([7, 30, 2], [3, 3], [1, 1], [[1, 1], [1, 1]], 20),
            ([6, 5, 4], [2, 3], [1, 2], [[0, 0], [2, 0]], 7),
            ([4, 4, 1], [1, 1], [1, 1], [[0, 0], [0, 0]], 40),
        ] {
            let s = Spatial { input, kernel, stride, pad };
            let ([h, w, c], [_, ow]) = (input, s.output());
            let reference = |x: &[f32], bias: &[f32], m: usize, n: usize| {
                let (oy, ox) = (m / ow, m % ow);
                let mut sum = bias[n] as f64;
                for ky in 0..kernel[0] {
                    for kx in 0..kernel[1] {
                        // Unpadded coordinates; outside the image reads zero.
                        let iy = (oy * stride[0] + ky).checked_sub(pad[0][0]).filter(|&v| v < h);
                        let ix = (ox * stride[1] + kx).checked_sub(pad[1][0]).filter(|&v| v < w);
                        let (Some(iy), Some(ix)) = (iy, ix) else { continue };
                        for ch in 0..c {
                            let k = (ky * kernel[1] + kx) * c + ch;
                            sum += (x[(iy * w + ix) * c + ch] * weight(n, k)) as f64;
                        }
                    }
                }
                sum
            };
            checked += check(Shape::Spatial(s), outputs, reference, |m, n| m * outputs + n);
        }
        assert!(checked == 0 || checked >= 4 * 2);
    }

    #[test]
    fn a_nan_input_stays_nan_through_the_clamp() {
        for simd in available() {
            let p = Pointwise { positions: 2, inputs: 2, x: Layout::ChannelLast, y: Layout::ChannelLast };
            let op = DirectConv::new(Shape::Pointwise(p), simd, |_, _| 1.0, &[0.0, 0.0], Some((0.0, 6.0)), tvec!(2, 2));
            let mut y = vec![0.0; 4];
            op.run(&[f32::NAN, 1.0, 2.0, 3.0], &mut y);
            assert!(y[0].is_nan() && y[1].is_nan(), "{simd:?}: {y:?}");
            assert_eq!(&y[2..], &[5.0, 5.0], "{simd:?}");
        }
    }
}
