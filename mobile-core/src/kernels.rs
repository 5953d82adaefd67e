//! Kernels Fruits adds to tract: a routine in its registry, and operators
//! that replace tract's convolutions in the plan.
//!
//! tract 0.23 picks its per-machine kernels from an [`inventory`] of
//! [`Routine`] descriptors (`tract_linalg::routines`), and any crate linked
//! into the binary may submit one. MobileNetV2 runs its depthwise convolutions
//! channel-last (NHWC), through [`Func::DepthwiseC`]; tract writes that kernel
//! for ARM64 and WebAssembly but not for x86-64, where it falls back to a
//! generic loop that re-reads and re-writes every output vector once per tap
//! (DESIGN.md: 56% of the inference time). This module fills that cell for
//! x86-64 with an AVX2 + FMA kernel and an AVX-512 one. tract's own selection
//! (`routines::best_for`) still decides: on a machine without AVX2 and FMA
//! nothing here is runnable and tract keeps its loop; on ARM nothing here is
//! compiled.
//!
//! The other convolutions, and the clamps after the depthwise ones, cannot be
//! reached through a routine: `rewrite_convolutions` swaps them for Fruits
//! operators before tract optimises the plan, the pointwise (1x1) ones and the
//! first 3x3 layer for a `DirectConv` (`direct_conv.rs`: register tiles that read
//! the activations in place, bias and ReLU6 fused) and the depthwise ones for a
//! `DirectDepthwise` (`direct_depthwise.rs`: the kernel above, ReLU6 fused). On
//! this project's Intel host they took the model from 2.2x ONNX Runtime's time
//! to 1.2x (BENCHMARKS.md). Same rules: x86-64 with AVX2 and FMA only.
//!
//! On every architecture, `fuse_fake_quant` turns the quantise/dequantise pairs of an
//! int8 (QDQ) model into one f32 operator each (`fake_quant.rs`).
//!
//! [`Routine`]: tract_onnx::tract_core::tract_linalg::routines::Routine
//! [`Func::DepthwiseC`]: tract_onnx::tract_core::tract_linalg::routines::Func::DepthwiseC

#[cfg(target_arch = "x86_64")]
mod depthwise_c_x86;
#[cfg(target_arch = "x86_64")]
mod direct_conv;
#[cfg(target_arch = "x86_64")]
mod direct_depthwise;
mod fake_quant;

use tract_onnx::prelude::{TractResult, TypedModel};

/// Fuses the quantise/dequantise pairs of a decluttered QDQ (int8) `model` into one f32
/// pass each (`fake_quant.rs`, every architecture), returning how many; 0 for a float
/// model. When it fused any, the graph needs decluttering again (pads it moved fold into
/// their convolutions).
pub(crate) fn fuse_fake_quant(model: &mut TypedModel) -> TractResult<usize> {
    fake_quant::fuse(model)
}

/// The NNEF operators of this module's graph surgery (the fused quantise/dequantise
/// pass), for the plan cache, which stores graphs after it.
pub(crate) fn nnef_registry() -> tract_nnef::internal::Registry {
    fake_quant::nnef_registry()
}

/// Replaces the convolutions of a decluttered `model` (with the bias and
/// ReLU6 that follow them) by Fruits' x86-64 operators, returning how many it
/// replaced; 0 on a CPU without AVX2 and FMA, and on other architectures.
pub(crate) fn rewrite_convolutions(model: &mut TypedModel) -> TractResult<usize> {
    #[cfg(target_arch = "x86_64")]
    return direct_conv::rewrite(model);
    #[cfg(not(target_arch = "x86_64"))]
    return Ok({
        let _ = model;
        0
    });
}

/// The names of the kernels this module registers for the running
/// architecture, widest instruction set first (empty where it registers
/// none). The statics `inventory` submits are `#[used]`, which rustc keeps
/// through linking; `tests/kernels.rs` checks from outside the crate that
/// tract resolves to one of these on x86-64.
pub fn registered() -> &'static [&'static str] {
    #[cfg(target_arch = "x86_64")]
    return depthwise_c_x86::NAMES;
    #[cfg(not(target_arch = "x86_64"))]
    return &[];
}
