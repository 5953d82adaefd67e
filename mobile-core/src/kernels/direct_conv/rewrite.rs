//! Finds the convolutions a [`DirectConv`] computes in a decluttered graph and
//! replaces each, with the bias and clamp that follow it, by one.
//!
//! A pointwise match is an `EinSum` over f32 whose second input is a constant
//! rank-2 matrix, contracting one axis of the activations with one of the
//! matrix (the input channels); the matrix's other axis is the output's
//! channel axis, and every other axis of the activations is an output position
//! axis (in the same order in the output) or has size 1. A spatial match is a
//! `Conv` over f32, channel-last, no dilation, with a constant OIHW kernel and
//! bias, and either one group (a [`DirectConv`]) or one group per channel (a
//! [`DirectDepthwise`]). Then, while the chain has one consumer each: an `Add` of a
//! constant that varies along the channel axis only (the bias, pointwise
//! only), a `Max` of a constant scalar and a `Min` of one (ReLU6). Anything
//! else is left to tract.

use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::{Add, Max, Min};
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::super::direct_depthwise::DirectDepthwise;
use super::{DirectConv, Layout, Pointwise, Shape, Simd, Spatial};

/// Rewrites every match in `model`, returning how many. Does nothing (and
/// returns 0) on a CPU without AVX2 and FMA.
pub(crate) fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let Some(simd) = Simd::native() else { return Ok(0) };
    rewrite_for(model, simd)
}

/// [`rewrite`] for a given instruction set.
fn rewrite_for(model: &mut TypedModel, simd: Simd) -> TractResult<usize> {
    let mut rewritten = 0;
    for id in model.eval_order()? {
        if let Some(patch) = direct_conv_patch(model, id, simd)? {
            patch.apply(model)?;
            rewritten += 1;
        }
    }
    if rewritten > 0 {
        model.compact()?;
    }
    Ok(rewritten)
}

/// Which operator a match becomes.
enum Kind {
    /// A [`DirectConv`].
    Dense(Shape),
    /// A [`DirectDepthwise`].
    Depthwise(Spatial),
}

/// A matched convolution, before fusing what follows it.
struct Matched {
    kind: Kind,
    /// Dense: `[output channel][reduction step]`, in [`DirectConv::new`]'s
    /// step order; depthwise: `[tap][channel]`.
    weights: Vec<f32>,
    /// Output channels.
    outputs: usize,
    /// Its own bias (a `Conv`'s third input), if any.
    bias: Option<Vec<f32>>,
    /// The output's channel axis.
    channel_axis: usize,
    /// The activations.
    input: OutletId,
}

/// The patch replacing node `id` and its fused successors, if it matches.
fn direct_conv_patch(model: &TypedModel, id: usize, simd: Simd) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let matched = if let Some(einsum) = node.op_as::<EinSum>() {
        pointwise(model, node, einsum)?
    } else if let Some(conv) = node.op_as::<Conv>() {
        convolution(model, node, conv)?
    } else {
        None
    };
    let Some(c) = matched else { return Ok(None) };
    let Some(output_shape) = model.outlet_fact(id.into())?.shape.as_concrete().map(|s| s.to_vec()) else {
        return Ok(None);
    };

    // The bias, then the clamp, each fused while the chain has one consumer.
    let mut stage = if c.bias.is_some() { 1 } else { 0 };
    let mut bias = c.bias.clone().unwrap_or_else(|| vec![0f32; c.outputs]);
    let (mut lo, mut hi) = (None, None);
    let mut last = node;
    while let Some(next) = sole_consumer(model, last)? {
        let Some(bin) = next.op_as::<TypedBinOp>() else { break };
        let Some(konst) = other_constant(model, next, last.id)? else { break };
        if model.outlet_fact(next.id.into())?.shape.as_concrete() != Some(&output_shape) {
            break;
        }
        if bin.0.is::<Add>() && stage == 0 {
            let Some(values) = per_channel(&konst, &output_shape, c.channel_axis, c.outputs) else { break };
            bias = values;
            stage = 1;
        } else if bin.0.is::<Max>() && stage < 2 && konst.len() == 1 {
            lo = Some(konst.cast_to_scalar::<f32>()?);
            stage = 2;
        } else if bin.0.is::<Min>() && stage < 3 && konst.len() == 1 {
            hi = Some(konst.cast_to_scalar::<f32>()?);
            stage = 3;
        } else {
            break;
        }
        last = next;
    }
    let clamp = match (lo, hi) {
        (None, None) => None,
        (lo, hi) => Some((lo.unwrap_or(f32::NEG_INFINITY), hi.unwrap_or(f32::INFINITY))),
    };

    let op: Box<dyn TypedOp> = match c.kind {
        Kind::Dense(shape) => {
            let depth = c.weights.len() / c.outputs;
            Box::new(DirectConv::new(shape, simd, |n, k| c.weights[n * depth + k], &bias, clamp, output_shape.into()))
        }
        Kind::Depthwise(shape) => {
            Box::new(DirectDepthwise::new(shape, simd, c.weights, bias, clamp, output_shape.into()))
        }
    };
    let mut patch = TypedModelPatch::default();
    let input = patch.tap_model(model, c.input)?;
    let wire = patch.wire_node(format!("{}.fruits_direct", node.name), op, &[input])?;
    patch.shunt_outside(model, last.id.into(), wire[0])?;
    Ok(Some(patch))
}

/// Reads `einsum` at `node` as a pointwise convolution, if it is one.
fn pointwise(model: &TypedModel, node: &TypedNode, einsum: &EinSum) -> TractResult<Option<Matched>> {
    if einsum.q_params.is_some() || einsum.operating_dt != f32::datum_type() || node.inputs.len() != 2 {
        return Ok(None);
    }
    // The constant matrix is either input (a graph read back from the plan cache has some
    // weights first).
    let (xi, wi) = if model.outlet_fact(node.inputs[1])?.konst.is_some() { (0, 1) } else { (1, 0) };
    let x_fact = model.outlet_fact(node.inputs[xi])?;
    let w_fact = model.outlet_fact(node.inputs[wi])?;
    let y_fact = model.outlet_fact(node.id.into())?;
    let (Some(x_shape), Some(y_shape), Some(weights)) =
        (x_fact.shape.as_concrete(), y_fact.shape.as_concrete(), w_fact.konst.clone())
    else {
        return Ok(None);
    };
    if x_fact.datum_type != f32::datum_type() || weights.datum_type() != f32::datum_type() || weights.rank() != 2 {
        return Ok(None);
    }

    // Classify every axis: contracted (k), output channel (n), position, or size 1.
    let (mut k_axis, mut n_axis) = (None, None);
    let mut positions: Vec<(usize, usize)> = Vec::new(); // (x axis, y axis), size > 1
    for axis in einsum.axes.iter_all_axes() {
        let (x, w, y) = (&axis.inputs[xi], &axis.inputs[wi], &axis.outputs[0]);
        if x.len() > 1 || w.len() > 1 || y.len() > 1 {
            return Ok(None);
        }
        match (x.first(), w.first(), y.first()) {
            (Some(&xa), Some(&wa), None) if k_axis.is_none() => k_axis = Some((xa, wa)),
            (None, Some(&wa), Some(&ya)) if n_axis.is_none() => n_axis = Some((wa, ya)),
            (Some(&xa), None, Some(&ya)) if x_shape[xa] == y_shape[ya] => {
                if x_shape[xa] > 1 {
                    positions.push((xa, ya));
                }
            }
            (Some(&xa), None, None) if x_shape[xa] == 1 => {}
            (None, None, Some(&ya)) if y_shape[ya] == 1 => {}
            _ => return Ok(None),
        }
    }
    let (Some((xk, wk)), Some((wn, yn))) = (k_axis, n_axis) else { return Ok(None) };
    let (inputs, outputs) = (weights.shape()[wk], weights.shape()[wn]);
    if x_shape[xk] != inputs || y_shape[yn] != outputs {
        return Ok(None);
    }
    // Positions in the same order on both sides, so that both flatten alike.
    positions.sort_unstable();
    if !positions.windows(2).all(|p| p[0].1 < p[1].1) {
        return Ok(None);
    }
    let (Some(x), Some(y)) = (layout(positions.iter().map(|p| p.0), xk), layout(positions.iter().map(|p| p.1), yn))
    else {
        return Ok(None);
    };
    let p = Pointwise { positions: positions.iter().map(|p| x_shape[p.0]).product(), inputs, x, y };
    let w = weights.try_as_plain_ram()?;
    let w = w.as_slice::<f32>()?;
    let weights = if wn == 0 {
        w.to_vec()
    } else {
        (0..outputs).flat_map(|n| (0..inputs).map(move |k| w[k * outputs + n])).collect()
    };
    let input = node.inputs[xi];
    Ok(Some(Matched { kind: Kind::Dense(Shape::Pointwise(p)), weights, outputs, bias: None, channel_axis: yn, input }))
}

/// Reads `conv` at `node` as a dense (one group) or depthwise (one group per
/// channel) spatial convolution, if it is one.
fn convolution(model: &TypedModel, node: &TypedNode, conv: &Conv) -> TractResult<Option<Matched>> {
    let spec = &conv.pool_spec;
    let channel_last = matches!(spec.data_format, DataFormat::NHWC | DataFormat::HWC);
    let depthwise = conv.group > 1 && conv.group == spec.input_channels && conv.group == spec.output_channels;
    if conv.q_params.is_some()
        || !(conv.group == 1 || depthwise)
        || conv.kernel_fmt != KernelFormat::OIHW
        || !channel_last
        || spec.kernel_shape.len() != 2
        || spec.dilations().iter().any(|&d| d != 1)
        || node.inputs.len() != 3
    {
        return Ok(None);
    }
    let facts = model.node_input_facts(node.id)?;
    let (Some(x_shape), Some(kernel), Some(bias)) =
        (facts[0].shape.as_concrete(), facts[1].konst.clone(), facts[2].konst.clone())
    else {
        return Ok(None);
    };
    let y_fact = model.outlet_fact(node.id.into())?;
    let Some(y_shape) = y_fact.shape.as_concrete() else { return Ok(None) };
    let batch = if spec.data_format == DataFormat::NHWC { 1 } else { 0 };
    if facts[0].datum_type != f32::datum_type()
        || kernel.datum_type() != f32::datum_type()
        || bias.datum_type() != f32::datum_type()
        || x_shape.len() != 3 + batch
        || x_shape[..batch].iter().any(|&n| n != 1)
    {
        return Ok(None);
    }
    let input = [x_shape[batch], x_shape[batch + 1], x_shape[batch + 2]];
    let (outputs, [kh, kw]) = (spec.output_channels, [spec.kernel_shape[0], spec.kernel_shape[1]]);
    let per_group = if depthwise { 1 } else { input[2] };
    if kernel.shape() != [outputs, per_group, kh, kw] || !(bias.len() == outputs || bias.len() == 1) {
        return Ok(None);
    }
    let padding = spec.computed_padding(&input[..2]);
    let s = Spatial {
        input,
        kernel: [kh, kw],
        stride: [spec.strides()[0], spec.strides()[1]],
        pad: [[padding[0].pad_before, padding[0].pad_after], [padding[1].pad_before, padding[1].pad_after]],
    };
    let [oh, ow] = s.output();
    if y_shape[batch..] != [oh, ow, outputs] {
        return Ok(None);
    }
    let bias = bias.try_as_plain_ram()?;
    let bias = bias.as_slice::<f32>()?;
    let bias = if bias.len() == 1 { vec![bias[0]; outputs] } else { bias.to_vec() };
    let kernel = kernel.try_as_plain_ram()?;
    let kernel = kernel.as_slice::<f32>()?;
    let (taps, channels) = (kh * kw, input[2]);
    let (kind, weights) = if depthwise {
        // OIHW is [channel][1][row][column]; the depthwise kernel reads [tap][channel].
        let weights = (0..taps).flat_map(|tap| (0..channels).map(move |ch| kernel[ch * taps + tap])).collect();
        (Kind::Depthwise(s), weights)
    } else {
        // Steps run over (tap row, tap column, channel); OIHW is [n][channel][row][column].
        let weights = (0..outputs)
            .flat_map(|n| (0..taps).flat_map(move |tap| (0..channels).map(move |ch| (n, tap, ch))))
            .map(|(n, tap, ch)| kernel[(n * channels + ch) * taps + tap])
            .collect();
        (Kind::Dense(Shape::Spatial(s)), weights)
    };
    Ok(Some(Matched {
        kind,
        weights,
        outputs,
        bias: Some(bias),
        channel_axis: y_shape.len() - 1,
        input: node.inputs[0],
    }))
}

/// The layout of a tensor whose significant axes are `positions` and `channel`:
/// the channel after every position axis, or before all of them.
fn layout(positions: impl Iterator<Item = usize> + Clone, channel: usize) -> Option<Layout> {
    if positions.clone().all(|p| p < channel) {
        Some(Layout::ChannelLast)
    } else if positions.clone().all(|p| p > channel) {
        Some(Layout::ChannelFirst)
    } else {
        None
    }
}

/// `node`'s only consumer, unless its output is also a model output.
fn sole_consumer<'m>(model: &'m TypedModel, node: &TypedNode) -> TractResult<Option<&'m TypedNode>> {
    if model.output_outlets()?.contains(&node.id.into()) {
        return Ok(None);
    }
    model.single_succ(node.id)
}

/// The constant operand of the binary `node` whose other operand is `from`'s output.
fn other_constant(model: &TypedModel, node: &TypedNode, from: usize) -> TractResult<Option<Arc<Tensor>>> {
    if node.inputs.len() != 2 {
        return Ok(None);
    }
    let other = if node.inputs[0] == from.into() {
        node.inputs[1]
    } else if node.inputs[1] == from.into() {
        node.inputs[0]
    } else {
        return Ok(None);
    };
    let fact = model.outlet_fact(other)?;
    Ok(fact.konst.clone().filter(|k| k.datum_type() == f32::datum_type()))
}

/// `konst` as one value per output channel, if it has `shape`'s rank and
/// varies along `channel_axis` only.
fn per_channel(konst: &Tensor, shape: &[usize], channel_axis: usize, channels: usize) -> Option<Vec<f32>> {
    let dims = konst.shape();
    if dims.len() != shape.len() {
        return None;
    }
    let along = dims.iter().enumerate().filter(|&(_, &d)| d != 1).map(|(a, _)| a).collect::<Vec<_>>();
    let plain = konst.try_as_plain_ram().ok()?;
    let values = plain.as_slice::<f32>().ok()?;
    match along.as_slice() {
        [] => Some(vec![values[0]; channels]),
        [a] if *a == channel_axis && values.len() == channels => Some(values.to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x (1, 4, 5, 3 channels) . w (6, 3)` in the NHWI,OI->OHW form MobileNetV2's
    /// first projection takes, then bias, Max 0, Min 6 (on a channel-first output).
    fn small_model(einsum: &str, x_shape: &[usize], bias_shape: &[usize]) -> TractResult<TypedModel> {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact(x_shape))?;
        let w: Vec<f32> = (0..18).map(|i| (i as f32 * 0.37).sin()).collect();
        let w = model.add_const("w", tensor1(&w).into_shape(&[6, 3])?)?;
        let axes: AxesMapping = einsum.parse()?;
        let y = model.wire_node("einsum", EinSum::new(axes, f32::datum_type()), &[x, w])?;
        let b: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
        let b = model.add_const("b", tensor1(&b).into_shape(bias_shape)?)?;
        let y = model.wire_node("bias", tract_onnx::tract_core::ops::math::add(), &[y[0], b])?;
        let zero = model.add_const("zero", tensor0(0f32).into_shape(&vec![1; bias_shape.len()])?)?;
        let six = model.add_const("six", tensor0(1.5f32).into_shape(&vec![1; bias_shape.len()])?)?;
        let y = model.wire_node("max", tract_onnx::tract_core::ops::math::max(), &[y[0], zero])?;
        let y = model.wire_node("min", tract_onnx::tract_core::ops::math::min(), &[y[0], six])?;
        model.select_output_outlets(&y)?;
        Ok(model)
    }

    fn run(model: &TypedModel, x: &Tensor) -> TractResult<Tensor> {
        let plan = model.clone().into_runnable()?;
        Ok(plan.run(tvec!(x.clone().into()))?.remove(0).into_tensor())
    }

    fn check(einsum: &str, x_shape: &[usize], bias_shape: &[usize]) -> TractResult<()> {
        let Some(simd) = Simd::native() else {
            eprintln!("skipped: this CPU has no AVX2 + FMA");
            return Ok(());
        };
        let model = small_model(einsum, x_shape, bias_shape)?;
        let len: usize = x_shape.iter().product();
        let x = tensor1(&(0..len).map(|i| (i as f32 * 0.7).cos() * 3.0).collect::<Vec<_>>()).into_shape(x_shape)?;
        let want = run(&model, &x)?;
        let mut rewritten = model.clone();
        assert_eq!(rewrite_for(&mut rewritten, simd)?, 1, "{einsum}");
        let ops: Vec<String> = rewritten.nodes().iter().map(|n| n.op.name().to_string()).collect();
        assert_eq!(ops, ["Source", "FruitsDirectConv"], "{einsum}: bias and clamp fused, constants gone");
        let got = run(&rewritten, &x)?;
        got.close_enough(&want, Approximation::Approximate)?;
        Ok(())
    }

    #[test]
    fn fuses_einsum_bias_and_relu6_in_every_layout_mobilenet_uses() -> TractResult<()> {
        check("nhwi,oi->ohw", &[1, 4, 5, 3], &[6, 1, 1])?;
        check("ihw,oi->hwo", &[3, 4, 5], &[1, 1, 6])?;
        check("hwi,oi->ohw", &[4, 5, 3], &[6, 1, 1])?;
        check("ihw,oi->nohw", &[3, 4, 5], &[1, 6, 1, 1])?;
        check("hwi,oi->hwo", &[4, 5, 3], &[1, 1, 6])
    }

    /// A 3x3 stride-2 `Conv` padded below and right (MobileNetV2's first
    /// layer and its downsampling depthwise ones, at a smaller size) with
    /// `group` groups over 16 channels in, then Max 0 and Min 1.5; an input.
    fn conv_model(group: usize, outputs: usize) -> TractResult<(TypedModel, Tensor)> {
        use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec};
        let pool_spec = PoolSpec {
            data_format: DataFormat::NHWC,
            kernel_shape: tvec!(3, 3),
            padding: PaddingSpec::Explicit(tvec!(0, 0), tvec!(1, 1)),
            dilations: None,
            strides: Some(tvec!(2, 2)),
            input_channels: 16,
            output_channels: outputs,
        };
        let conv = Conv { pool_spec, kernel_fmt: KernelFormat::OIHW, group, q_params: None };
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, 9, 12, 16]))?;
        let per_group = 16 / group;
        let k: Vec<f32> = (0..outputs * per_group * 9).map(|i| (i as f32 * 0.37).sin()).collect();
        let k = model.add_const("k", tensor1(&k).into_shape(&[outputs, per_group, 3, 3])?)?;
        let b = model.add_const("b", tensor1(&(0..outputs).map(|i| i as f32 * 0.3 - 1.0).collect::<Vec<_>>()))?;
        let y = model.wire_node("conv", conv, &[x, k, b])?;
        let zero = model.add_const("zero", tensor0(0f32).into_shape(&[1, 1, 1, 1])?)?;
        let six = model.add_const("six", tensor0(1.5f32).into_shape(&[1, 1, 1, 1])?)?;
        let y = model.wire_node("max", tract_onnx::tract_core::ops::math::max(), &[y[0], zero])?;
        let y = model.wire_node("min", tract_onnx::tract_core::ops::math::min(), &[y[0], six])?;
        model.select_output_outlets(&y)?;
        let x = tensor1(&(0..9 * 12 * 16).map(|i| (i as f32 * 0.7).cos() * 3.0).collect::<Vec<_>>())
            .into_shape(&[1, 9, 12, 16])?;
        Ok((model, x))
    }

    /// Rewrites [`conv_model`] and checks it becomes `op` alone, computing
    /// what tract computes.
    fn check_conv(group: usize, outputs: usize, op: &str) -> TractResult<()> {
        let Some(simd) = Simd::native() else { return Ok(()) };
        let (mut model, x) = conv_model(group, outputs)?;
        let want = run(&model, &x)?;
        assert_eq!(want.shape(), [1, 4, 6, outputs]);
        assert_eq!(rewrite_for(&mut model, simd)?, 1);
        let ops: Vec<String> = model.nodes().iter().map(|n| n.op.name().to_string()).collect();
        assert_eq!(ops, ["Source", op]);
        run(&model, &x)?.close_enough(&want, Approximation::Approximate)?;
        Ok(())
    }

    #[test]
    fn fuses_a_strided_padded_conv_with_its_relu6() -> TractResult<()> {
        check_conv(1, 8, "FruitsDirectConv")
    }

    #[test]
    fn fuses_a_depthwise_conv_with_its_relu6() -> TractResult<()> {
        check_conv(16, 16, "FruitsDirectDepthwise")
    }

    #[test]
    fn leaves_a_grouped_conv_that_is_not_depthwise() -> TractResult<()> {
        let Some(simd) = Simd::native() else { return Ok(()) };
        let (mut model, _) = conv_model(4, 8)?;
        assert_eq!(rewrite_for(&mut model, simd)?, 0);
        Ok(())
    }

    #[test]
    fn leaves_a_contraction_that_is_not_a_pointwise_convolution() -> TractResult<()> {
        let Some(simd) = Simd::native() else { return Ok(()) };
        // Positions reordered between input and output (a transpose): not ours.
        let mut model = small_model("hwi,oi->woh", &[4, 5, 3], &[1, 6, 1])?;
        assert_eq!(rewrite_for(&mut model, simd)?, 0);
        // A bias varying along a position axis is not fused: the einsum is, alone.
        let mut model = small_model("hwi,oi->hwo", &[4, 6, 3], &[1, 6, 1])?;
        let x = tensor1(&(0..72).map(|i| i as f32 * 0.01).collect::<Vec<_>>()).into_shape(&[4, 6, 3])?;
        let want = run(&model, &x)?;
        assert_eq!(rewrite_for(&mut model, simd)?, 1);
        assert!(model.nodes().iter().any(|n| n.op.name() == "Add"));
        run(&model, &x)?.close_enough(&want, Approximation::Approximate)?;
        Ok(())
    }
}
