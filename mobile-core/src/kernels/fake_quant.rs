//! The quantise/dequantise pairs of a QDQ model (the int8 one), as one f32 pass each.
//!
//! A QDQ model keeps its convolutions in float and marks every int8 activation with a
//! `QuantizeLinear` (f32 -> u8) followed by a `DequantizeLinear` (u8 -> f32). tract runs
//! the pair as two element-wise operators, the first one scalar, with a u8 tensor in between:
//! in the int8 model's profile they took 54% of the inference (BENCHMARKS.md, int8).
//! [`fuse`] replaces each pair by one [`FakeQuant`], which computes the same values
//! in place, in f32, in a loop the compiler vectorises:
//!
//! `y = (clamp(round(x * m + zp), 0, 255) - zp) * s = clamp(round(x * m), -zp, 255 - zp) * s`
//!
//! (the bounds are integers, so clamping before rounding changes nothing). It is bit-equal
//! to the pair (a unit test below, and `tests/embedder.rs` on the whole model).
//!
//! A pair right after a zero `Pad` is then moved in front of it, since a fake-quantised zero
//! is zero: the `Pad` meets its convolution again, and tract's declutter folds it into the
//! convolution's own padding, as it does in the f32 model.

use tract_nnef::internal::{
    IntoAst, ModelBuilder, Parameter, RValue, Registry, ResolvedInvocation, TypeName, Value, invocation, numeric,
};
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::array::{Pad, PadMode};
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::quant::{DequantizeLinearF32, LookupTable, QuantizeLinearU8};

/// `x -> clamp(round_ties_even(x * multiplier), low, high) * scale`, element-wise on f32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FakeQuant {
    /// The quantiser's multiplier (1 / its scale).
    multiplier: f32,
    /// `-zero_point`.
    low: f32,
    /// `255 - zero_point`.
    high: f32,
    /// The dequantiser's scale.
    scale: f32,
}

/// Adding then subtracting 1.5 * 2^23 rounds an f32 of magnitude below 2^22 to the
/// nearest integer, ties to even (IEEE's default rounding), with two additions the
/// compiler vectorises on every target (`round_ties_even` is a libm call on x86-64's
/// baseline).
const ROUND: f32 = 12_582_912.0;

impl FakeQuant {
    fn new(quantize: &QuantizeLinearU8, dequantize: &DequantizeLinearF32) -> Option<Self> {
        let zero = i32::from(quantize.zero_point);
        let usable = dequantize.zero_point == zero && quantize.scale.is_finite() && dequantize.scale.is_finite();
        usable.then(|| Self {
            multiplier: quantize.scale,
            low: -zero as f32,
            high: (255 - zero) as f32,
            scale: dequantize.scale,
        })
    }

    fn run(&self, values: &mut [f32]) {
        for v in values {
            // `max` then `min`, which vectorise; a NaN input (the convolutions before never make
            // one) comes out as the low bound, where tract's pair gives 0.
            let clamped = (*v * self.multiplier).max(self.low).min(self.high);
            *v = ((clamped + ROUND) - ROUND) * self.scale;
        }
    }

    /// Whether `value` comes out unchanged (true of 0: the zero point is in `0..=255`).
    fn keeps(&self, value: f32) -> bool {
        let mut v = [value];
        self.run(&mut v);
        v[0] == value
    }
}

impl Op for FakeQuant {
    fn name(&self) -> StaticName {
        "FruitsFakeQuant".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("x * {} in [{}, {}], rounded, * {}", self.multiplier, self.low, self.high, self.scale)])
    }

    op_as_typed_op!();
}

/// Its fields are finite (checked in `new`), so `==` is an equivalence.
impl Eq for FakeQuant {}

impl EvalOp for FakeQuant {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let mut tensor = args_1!(inputs).into_tensor();
        self.run(tensor.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?);
        Ok(tvec!(tensor.into_tvalue()))
    }
}

impl TypedOp for FakeQuant {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == f32::datum_type(), "FruitsFakeQuant runs on f32");
        Ok(tvec!(f32::datum_type().fact(inputs[0].shape.clone())))
    }

    fn axes_mapping(&self, inputs: &[&TypedFact], outputs: &[&TypedFact]) -> TractResult<AxesMapping> {
        AxesMapping::natural(inputs, outputs)
    }

    fn change_axes(
        &self,
        model: &TypedModel,
        node: &TypedNode,
        _io: InOut,
        change: &AxisOp,
    ) -> TractResult<Option<AxisChangeConsequence>> {
        Ok(Some(AxisChangeConsequence::new(model, node, None, change)))
    }

    as_op!();
}

/// The NNEF fragment of a [`FakeQuant`] in a stored graph (the plan cache's).
const NNEF_NAME: &str = "fruits_fake_quant";

/// The registry that writes and reads [`FakeQuant`] in NNEF: `fruits_fake_quant(input,
/// multiplier, low, high, scale)`, each parameter an f32 written in its shortest exact form.
pub(crate) fn nnef_registry() -> Registry {
    let mut registry = Registry::new("fruits").with_doc("Fruits' fused quantise/dequantise pass (fake_quant.rs).");
    registry.register_dumper(dump);
    let parameters: Vec<Parameter> = std::iter::once(TypeName::Scalar.tensor().named("input"))
        .chain(["multiplier", "low", "high", "scale"].map(|name| TypeName::Scalar.named(name)))
        .collect();
    registry.register_primitive(NNEF_NAME, &parameters, &[("output", TypeName::Scalar.tensor())], load);
    registry
}

fn dump(ast: &mut IntoAst, node: &TypedNode, op: &FakeQuant) -> TractResult<Option<Arc<RValue>>> {
    let input = ast.mapping[&node.inputs[0]].clone();
    let FakeQuant { multiplier, low, high, scale } = *op;
    let named =
        [("multiplier", multiplier), ("low", low), ("high", high), ("scale", scale)].map(|(n, v)| (n, numeric(v)));
    Ok(Some(invocation(NNEF_NAME, &[input], &named)))
}

fn load(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let input = invocation.named_arg_as(builder, "input")?;
    let op = FakeQuant {
        multiplier: invocation.named_arg_as(builder, "multiplier")?,
        low: invocation.named_arg_as(builder, "low")?,
        high: invocation.named_arg_as(builder, "high")?,
        scale: invocation.named_arg_as(builder, "scale")?,
    };
    ensure!(
        [op.multiplier, op.low, op.high, op.scale].iter().all(|v| v.is_finite()) && op.low <= op.high,
        "{NNEF_NAME}: parameters out of range: {op:?}"
    );
    builder.wire(op, &[input])
}

/// Fuses every quantise/dequantise pair of `model` into a [`FakeQuant`] and moves those
/// that follow a zero `Pad` in front of it, returning how many pairs it fused (0 for a
/// float model). The caller declutters again when any moved, so that the pads fold.
pub(crate) fn fuse(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    for id in model.eval_order()? {
        if let Some(patch) = pair_patch(model, id)? {
            patch.apply(model)?;
            fused += 1;
        }
    }
    if fused > 0 {
        model.compact()?;
        for id in model.eval_order()? {
            if let Some(patch) = pad_swap_patch(model, id)? {
                patch.apply(model)?;
            }
        }
        model.compact()?;
    }
    Ok(fused)
}

/// The patch replacing the quantiser at `id` and the dequantiser after it, if they pair.
fn pair_patch(model: &TypedModel, id: usize) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let Some(quantize) = node.op_as::<ElementWiseOp>().and_then(|op| op.0.downcast_ref::<QuantizeLinearU8>()) else {
        return Ok(None);
    };
    if model.outlet_fact(node.inputs[0])?.datum_type != f32::datum_type() {
        return Ok(None);
    }
    // Between the two, tract may leave reshapes and the identity table it made of a
    // dequantise/requantise pair of equal scales (the model's last one): both keep values.
    let mut between = Vec::new();
    let mut next = model.single_succ(id)?;
    let dequantize = loop {
        let Some(succ) = next else { return Ok(None) };
        if let Some(dequantize) = succ.op_as::<DequantizeLinearF32>() {
            break dequantize;
        }
        if let Some(axis) = succ.op_as::<AxisOp>() {
            between.push((succ.name.clone(), axis.clone()));
        } else if !is_identity_table(succ) {
            return Ok(None);
        }
        next = model.single_succ(succ.id)?;
    };
    let Some(op) = FakeQuant::new(quantize, dequantize) else { return Ok(None) };
    let Some(last) = next else { return Ok(None) };
    let mut patch = TypedModelPatch::default();
    let input = patch.tap_model(model, node.inputs[0])?;
    let mut out = patch.wire_node(&node.name, op, &[input])?[0];
    for (name, axis) in between {
        out = patch.wire_node(name, axis, &[out])?[0];
    }
    patch.shunt_outside(model, OutletId::new(last.id, 0), out)?;
    Ok(Some(patch))
}

/// Whether `node` is a u8 lookup table mapping every value to itself.
fn is_identity_table(node: &TypedNode) -> bool {
    let table = node.op_as::<ElementWiseOp>().and_then(|op| op.0.downcast_ref::<LookupTable>());
    table.is_some_and(|t| {
        t.table.table().iter().enumerate().all(|(i, &v)| usize::from(v) == i) && t.table.table().len() == 256
    })
}

/// `x -> Pad(0) -> FakeQuant` becomes `x -> FakeQuant -> Pad(0)` (the same values).
fn pad_swap_patch(model: &TypedModel, id: usize) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let Some(fake) = node.op_as::<FakeQuant>() else { return Ok(None) };
    let pad_node = model.node(node.inputs[0].node);
    let Some(pad) = pad_node.op_as::<Pad>() else { return Ok(None) };
    let PadMode::Constant(value) = &pad.mode else { return Ok(None) };
    let Ok(value) = value.cast_to_scalar::<f32>() else { return Ok(None) };
    if model.single_succ(pad_node.id)?.map(|n| n.id) != Some(id) || !fake.keeps(value) {
        return Ok(None);
    }
    let mut patch = TypedModelPatch::default();
    let input = patch.tap_model(model, pad_node.inputs[0])?;
    let quantized = patch.wire_node(&node.name, *fake, &[input])?[0];
    let padded = patch.wire_node(&pad_node.name, pad.clone(), &[quantized])?[0];
    patch.shunt_outside(model, OutletId::new(id, 0), padded)?;
    Ok(Some(patch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::quant::quantize_linear_f32_u8;

    /// The fused operator computes what tract's pair computes, bit for bit, over values
    /// spanning the range, its edges, ties, and far outside it.
    #[test]
    fn fake_quant_is_bit_equal_to_quantize_then_dequantize() {
        for (scale, zero_point) in [(0.0235f32, 0u8), (0.0117, 128), (0.05, 17), (0.003, 255)] {
            let q = QuantizeLinearU8 { scale: scale.recip(), zero_point };
            let dq = DequantizeLinearF32 { scale, zero_point: i32::from(zero_point) };
            let op = FakeQuant::new(&q, &dq).unwrap();
            let mut xs: Vec<f32> = (-40_000..40_000).map(|i| i as f32 * scale / 97.0).collect();
            xs.extend((-300..300).map(|i| (i as f32 + 0.5) * scale)); // ties
            xs.extend([0.0, -0.0, 1e6, -1e6]);
            let mut fused = xs.clone();
            op.run(&mut fused);
            for (x, y) in xs.iter().zip(&fused) {
                let pair = (i32::from(quantize_linear_f32_u8(*x, q.scale, i32::from(zero_point))) - dq.zero_point)
                    as f32
                    * dq.scale;
                assert_eq!(y.to_bits(), pair.to_bits(), "x {x}, scale {scale}, zero point {zero_point}");
            }
        }
    }

    /// `x -> [Pad(0) ->] Q -> DQ`, as tract-onnx loads a QDQ model's activations.
    fn pair_model(pad: bool) -> TypedModel {
        let mut model = TypedModel::default();
        let mut wire = model.add_source("x", f32::fact([1, 5, 4, 3])).unwrap();
        if pad {
            let op = Pad { pads: vec![(0, 0), (1, 1), (0, 1), (0, 0)], mode: PadMode::Constant(rctensor0(0f32)) };
            wire = model.wire_node("pad", op, &[wire]).unwrap()[0];
        }
        let q = ElementWiseOp(Box::new(QuantizeLinearU8 { scale: 40.0, zero_point: 3 }), None);
        wire = model.wire_node("q", q, &[wire]).unwrap()[0];
        wire = model.wire_node("dq", DequantizeLinearF32 { scale: 0.025, zero_point: 3 }, &[wire]).unwrap()[0];
        model.select_output_outlets(&[wire]).unwrap();
        model
    }

    fn run(model: TypedModel, x: &Tensor) -> Tensor {
        model.into_runnable().unwrap().run(tvec!(x.clone().into())).unwrap().remove(0).into_tensor()
    }

    #[test]
    fn a_graph_computes_the_same_bits_after_fusing_and_its_pad_moves_behind() {
        let values: Vec<f32> = (0..60).map(|i| (i as f32 - 23.0) * 0.0137).collect();
        let x = tract_ndarray::Array4::from_shape_vec((1, 5, 4, 3), values).unwrap().into_tensor();
        for pad in [false, true] {
            let mut fused = pair_model(pad);
            assert_eq!(fuse(&mut fused).unwrap(), 1);
            let ops: Vec<String> =
                fused.eval_order().unwrap().iter().map(|&id| fused.node(id).op.name().to_string()).collect();
            let expected: &[&str] =
                if pad { &["Source", "FruitsFakeQuant", "Pad"] } else { &["Source", "FruitsFakeQuant"] };
            assert_eq!(ops, expected, "pad {pad}");
            let (a, b) = (run(fused, &x), run(pair_model(pad), &x));
            assert_eq!(a.shape(), b.shape());
            let bits = |t: &Tensor| {
                t.try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            assert_eq!(bits(&a), bits(&b), "pad {pad}");
        }
    }

    /// The plan cache stores fused graphs: written to NNEF and read back, one computes the
    /// same bits (each parameter survives its text form exactly).
    #[test]
    fn a_fused_graph_round_trips_through_nnef() {
        let nnef = tract_nnef::nnef().with_registry(nnef_registry());
        let mut fused = pair_model(true);
        fuse(&mut fused).unwrap();
        let tar = nnef.write_to_tar(&fused, Vec::new()).unwrap();
        let read = nnef.model_for_read(&mut std::io::Cursor::new(&tar)).unwrap();
        let found: Vec<&FakeQuant> = read.nodes().iter().filter_map(|n| n.op_as::<FakeQuant>()).collect();
        assert_eq!(found, [fused.nodes().iter().find_map(|n| n.op_as::<FakeQuant>()).unwrap()]);
        let values: Vec<f32> = (0..60).map(|i| (i as f32 - 23.0) * 0.0137).collect();
        let x = tract_ndarray::Array4::from_shape_vec((1, 5, 4, 3), values).unwrap().into_tensor();
        assert_eq!(run(read, &x), run(fused, &x));
        // Without the registry the archive is refused, not misread.
        assert!(tract_nnef::nnef().model_for_read(&mut std::io::Cursor::new(&tar)).is_err());
    }

    #[test]
    fn a_float_graph_is_left_alone() {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, 3])).unwrap();
        model.select_output_outlets(&[x]).unwrap();
        assert_eq!(fuse(&mut model).unwrap(), 0);
    }

    #[test]
    fn zero_survives_so_a_zero_pad_may_move_after_it() {
        let q = QuantizeLinearU8 { scale: 40.0, zero_point: 3 };
        let dq = DequantizeLinearF32 { scale: 0.025, zero_point: 3 };
        let op = FakeQuant::new(&q, &dq).unwrap();
        assert!(op.keeps(0.0));
        assert!(!op.keeps(0.0101), "0.0101 * 40 rounds to 0");
    }

    #[test]
    fn unlike_pairs_are_left_alone() {
        let q = QuantizeLinearU8 { scale: 40.0, zero_point: 3 };
        assert!(FakeQuant::new(&q, &DequantizeLinearF32 { scale: 0.025, zero_point: 4 }).is_none());
        assert!(FakeQuant::new(&q, &DequantizeLinearF32 { scale: f32::NAN, zero_point: 3 }).is_none());
    }
}
