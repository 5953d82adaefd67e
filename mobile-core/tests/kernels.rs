//! Which tract kernels this build runs on this CPU, and a guard against a phone build
//! silently falling back to tract's generic (portable Rust) kernels.
//!
//! Run with `--nocapture` to read the report; `scripts/cross.sh` runs it on ARM64
//! and ARMv7 under QEMU.

use tract_onnx::prelude::DatumType;
use tract_onnx::tract_core::tract_linalg::isa::{self, Arch};
use tract_onnx::tract_core::tract_linalg::mmm_routines;
use tract_onnx::tract_core::tract_linalg::routines::{self, Func};

/// The routines MobileNetV2's hot operators go through (DESIGN.md: depthwise
/// convolution 56% of the time with tract's portable loop, matrix multiplication 30%).
const HOT: [(&str, Func); 2] =
    [("depthwise (channels contiguous)", Func::DepthwiseC), ("depthwise (width contiguous)", Func::DepthwiseW)];

#[test]
fn kernels_for_this_cpu_are_reported_and_arm_builds_use_simd_kernels() {
    let native = isa::native();
    println!("target arch: {}, ISA rung: {}", std::env::consts::ARCH, native.nickname());
    // ARMv7 NEON is probed from /proc/cpuinfo, which QEMU 7.2 user mode takes from the host:
    // scripts/cross.sh forces it, and the report must say so.
    if let (Some(Arch::Arm), Ok(forced)) = (native.arch(), std::env::var("TRACT_CPU_ARM32_NEON")) {
        println!("target arch: NEON not probed, forced by TRACT_CPU_ARM32_NEON={forced}");
    }
    let mut arch_specific = Vec::new();
    for (what, func) in HOT {
        match routines::best_for(func, DatumType::F32, &native) {
            Some(r) => {
                println!("{what}: {} ({})", r.name(), if r.arch.is_some() { "architecture kernel" } else { "generic" });
                arch_specific.push(r.arch.is_some());
            }
            None => println!("{what}: no routine (tract's default loop)"),
        }
    }
    let mut mmm: Vec<String> = mmm_routines::declared()
        .map(|r| (r.make)())
        .filter(|m| m.built() && m.arch() == native.arch() && m.isa().satisfied_by(native))
        .map(|m| m.name().to_owned())
        .collect();
    mmm.sort();
    println!("f32/f16/int matmul kernels runnable here ({}): {}", mmm.len(), mmm.join(", "));

    match native.arch() {
        Some(Arch::Aarch64 | Arch::Arm) => {
            assert!(
                native.nickname() != "vfp" && native.nickname() != "none",
                "no NEON detected: {}",
                native.nickname()
            );
            assert!(!mmm.is_empty(), "ARM build fell back to generic matmul kernels");
        }
        _ => assert!(native.arch().is_some(), "unknown architecture: generic kernels only"),
    }
    // Every hot routine tract declares for this machine must be an architecture kernel on ARM.
    if matches!(native.arch(), Some(Arch::Aarch64)) {
        assert!(arch_specific.iter().all(|&a| a), "a hot routine runs generic code on ARM64");
    }
    // tract writes no channel-contiguous depthwise kernel for x86-64: fruits-core registers
    // one (`fruits_core::kernels`), and tract must pick it on any CPU with AVX2 and FMA.
    if matches!(native.arch(), Some(Arch::X86_64))
        && native.has(isa::Isa::X86_64Avx2)
        && native.has(isa::Isa::X86_64Fma)
    {
        let chosen = routines::best_for(Func::DepthwiseC, DatumType::F32, &native).map(|r| r.name());
        assert!(
            chosen.is_some_and(|name| fruits_core::kernels::registered().contains(&name)),
            "x86-64 depthwise (channels contiguous) runs {chosen:?}, not a Fruits kernel {:?}",
            fruits_core::kernels::registered()
        );
    }
}
