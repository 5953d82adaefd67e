//! Which of tract-linalg's kernels a build selects on the CPU it runs on.
//!
//! tract declares its kernels through `inventory` (linker sections) and picks one per routine
//! at run time from the CPU's instruction sets. A build can lose the SIMD kernels without a
//! compile error (a link or LTO that drops the declarations, a CPU probe that finds no NEON)
//! and silently run tract's generic Rust instead. [`KernelReport::gather`] reads what this
//! process would run; [`KernelReport::check`] refuses a phone-class build that fell back.
//! fruits-core's `kernels` test prints and checks it on every target, and `scripts/cross.sh`
//! runs this crate's binary built with the `mobile` profile the apps ship (fat LTO).

// No panic reachable from input or from another request's failure (tests exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::fmt;

use tract_data::prelude::DatumType;
use tract_linalg::isa::{self, Arch, IsaSet};
use tract_linalg::mmm_routines;
use tract_linalg::routines::{self, Func};

/// The routines MobileNetV2's hot operators go through besides matrix multiplication.
const HOT: [(&str, Func); 2] =
    [("depthwise (channels contiguous)", Func::DepthwiseC), ("depthwise (width contiguous)", Func::DepthwiseW)];

/// The kernel chosen for one hot routine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotRoutine {
    /// What the routine computes.
    pub what: &'static str,
    /// The chosen kernel's name and whether it is written for this architecture (not generic
    /// Rust); `None` when tract declares no routine and runs its default loop.
    pub chosen: Option<(&'static str, bool)>,
}

/// What this build runs on this CPU.
#[derive(Debug, Clone)]
pub struct KernelReport {
    /// The instruction sets tract detected (or was told about).
    pub isa: IsaSet,
    /// `TRACT_CPU_ARM32_NEON` when set on ARMv7 (QEMU hides NEON from tract's probe).
    pub neon_forced: Option<String>,
    /// The f32 depthwise routines.
    pub hot: Vec<HotRoutine>,
    /// Names of the matrix multiplication kernels written for this architecture that this
    /// CPU can run, sorted.
    pub matmul: Vec<String>,
}

/// Why a build's kernels are not what a phone needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Fallback(pub String);

impl KernelReport {
    /// Reads the kernels this process would run.
    pub fn gather() -> Self {
        let isa = isa::native();
        let neon_forced = match isa.arch() {
            Some(Arch::Arm) => std::env::var("TRACT_CPU_ARM32_NEON").ok(),
            _ => None,
        };
        let hot = HOT
            .iter()
            .map(|&(what, func)| HotRoutine {
                what,
                chosen: routines::best_for(func, DatumType::F32, &isa).map(|r| (r.name(), r.arch.is_some())),
            })
            .collect();
        let mut matmul: Vec<String> = mmm_routines::declared()
            .map(|r| (r.make)())
            .filter(|m| m.built() && m.arch() == isa.arch() && m.isa().satisfied_by(isa))
            .map(|m| m.name().to_owned())
            .collect();
        matmul.sort();
        KernelReport { isa, neon_forced, hot, matmul }
    }

    /// Refuses an ARM build that runs without NEON, without architecture matrix kernels, or
    /// (ARM64, where tract writes them all) with a generic hot routine, and a build for an
    /// architecture tract does not know.
    pub fn check(&self) -> Result<(), Fallback> {
        match self.isa.arch() {
            Some(Arch::Aarch64 | Arch::Arm) => {
                let rung = self.isa.nickname();
                if rung == "vfp" || rung == "none" {
                    return Err(Fallback(format!("no NEON detected: {rung}")));
                }
                if self.matmul.is_empty() {
                    return Err(Fallback("ARM build fell back to generic matmul kernels".into()));
                }
                if self.isa.arch() == Some(Arch::Aarch64)
                    && let Some(h) = self.hot.iter().find(|h| !h.chosen.is_some_and(|(_, arch)| arch))
                {
                    return Err(Fallback(format!("{} runs generic code on ARM64: {:?}", h.what, h.chosen)));
                }
                Ok(())
            }
            Some(_) => Ok(()),
            None => Err(Fallback("unknown architecture: generic kernels only".into())),
        }
    }
}

/// The report as `scripts/cross.sh` collects it: lines starting `target arch`, the routine
/// names, and `f32/f16/int matmul`.
impl fmt::Display for KernelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "target arch: {}, ISA rung: {}", std::env::consts::ARCH, self.isa.nickname())?;
        if let Some(forced) = &self.neon_forced {
            writeln!(f, "target arch: NEON not probed, forced by TRACT_CPU_ARM32_NEON={forced}")?;
        }
        for h in &self.hot {
            match h.chosen {
                Some((name, arch)) => {
                    writeln!(f, "{}: {name} ({})", h.what, if arch { "architecture kernel" } else { "generic" })?
                }
                None => writeln!(f, "{}: no routine (tract's default loop)", h.what)?,
            }
        }
        writeln!(f, "f32/f16/int matmul kernels runnable here ({}): {}", self.matmul.len(), self.matmul.join(", "))
    }
}
