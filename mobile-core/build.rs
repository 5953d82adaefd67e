//! Says whether the linked libjpeg-turbo (built from source by mozjpeg-sys) has its SIMD
//! decoder. On x86 it is assembled with `nasm`; without nasm on the PATH when mozjpeg-sys
//! is first built, the build silently falls back to plain C (about 3x slower for the
//! large photos phones take) and stays so, since installing nasm later rebuilds nothing.
//! This script reads mozjpeg-sys's generated `jconfig.h` (first entry of
//! `DEP_JPEG_INCLUDE`), warns loudly when `WITH_SIMD` is missing where it matters, and
//! tells the crate through the `jpeg_simd` cfg (`fruits_core::preprocess::JPEG_SIMD`).

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(jpeg_simd)");
    println!("cargo::rerun-if-env-changed=DEP_JPEG_INCLUDE");
    let config = std::env::var_os("DEP_JPEG_INCLUDE")
        .and_then(|dirs| std::env::split_paths(&dirs).next())
        .map(|dir: PathBuf| dir.join("jconfig.h"));
    let simd = config
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .is_some_and(|text| text.lines().any(|l| l.trim() == "#define WITH_SIMD 1"));
    if simd {
        println!("cargo::rustc-cfg=jpeg_simd");
        return;
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch == "x86_64" || arch == "x86" {
        println!(
            "cargo::warning=libjpeg-turbo was built WITHOUT its SIMD decoder (nasm was not on the PATH when \
             mozjpeg-sys was first built): large JPEGs decode about 3x slower. Install nasm \
             (apt-get install nasm), then `cargo clean -p mozjpeg-sys` and build again."
        );
    }
}
