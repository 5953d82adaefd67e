//! Which tract kernels this build runs on this CPU, and a guard against a phone build
//! silently falling back to tract's generic (portable Rust) kernels.
//!
//! Run with `--nocapture` to read the report; `scripts/cross.sh` runs it on ARM64
//! and ARMv7 under QEMU.

use fruits_kernel_probe::KernelReport;
use tract_onnx::prelude::DatumType;
use tract_onnx::tract_core::tract_linalg::isa::{self, Arch};
use tract_onnx::tract_core::tract_linalg::routines::{self, Func};

#[test]
fn kernels_for_this_cpu_are_reported_and_arm_builds_use_simd_kernels() {
    let report = KernelReport::gather();
    print!("{report}");
    // ARM: NEON detected (or forced, and the report says so), architecture matrix kernels,
    // and on ARM64 an architecture kernel for every hot depthwise routine.
    report.check().unwrap_or_else(|fallback| panic!("{fallback}"));

    // tract writes no channel-contiguous depthwise kernel for x86-64: fruits-core registers
    // one (`fruits_core::kernels`), and tract must pick it on any CPU with AVX2 and FMA.
    let native = isa::native();
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
