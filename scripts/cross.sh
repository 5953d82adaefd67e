#!/usr/bin/env bash
# Phone-class builds, verified: cross-builds the on-device core for ARM Linux with
# Debian's Rust toolchain and runs the tests that matter on a phone under QEMU
# user-mode emulation.
#
#   scripts/cross.sh                    both targets (CROSS_TARGETS overrides)
#   CROSS_TARGETS=aarch64-unknown-linux-gnu scripts/cross.sh
#
# Tests run on each target: the formats crate (shard encode/decode, projection
# signature checks), the core's unit tests (preprocessing, queue, uploader),
# ONNX Runtime parity of the embeddings (the reference runs on the host's Python;
# an emulated ARM process may exec the host's x86 python3), bad-input refusals,
# wrong-model refusals, and the kernel report, which fails if ARM64 falls back to
# tract's generic kernels. Emulated timings mean nothing: none are taken.
#
# Idempotent: installs the toolchain only when missing. Builds go to target/cross
# so that Debian's rustc 1.96 and rustup's 1.95 never invalidate each other.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=${CROSS_TARGETS:-"aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf"}
RUSTC=/usr/bin/rustc
CARGO=/usr/bin/cargo

# target -> Debian architecture, C cross compiler, QEMU, sysroot
deb_arch() { case "$1" in aarch64-*) echo arm64 ;; armv7-*) echo armhf ;; *) return 1 ;; esac; }
cc_for() { case "$1" in aarch64-*) echo aarch64-linux-gnu-gcc ;; armv7-*) echo arm-linux-gnueabihf-gcc ;; esac; }
qemu_for() { case "$1" in aarch64-*) echo qemu-aarch64 ;; armv7-*) echo qemu-arm ;; esac; }
sysroot_for() { case "$1" in aarch64-*) echo /usr/aarch64-linux-gnu ;; armv7-*) echo /usr/arm-linux-gnueabihf ;; esac; }

have_toolchain() {
    local t=$1
    [ -x "$RUSTC" ] && [ -d "/usr/lib/rustlib/$t/lib" ] \
        && command -v "$(cc_for "$t")" >/dev/null && command -v "$(qemu_for "$t")" >/dev/null
}

install_toolchain() {
    local t=$1 arch
    arch=$(deb_arch "$t")
    echo "cross: installing Debian's Rust toolchain for $t ($arch)" >&2
    dpkg --add-architecture "$arch"
    # A mirror mid-sync can fail one foreign index; the install below says if it matters.
    apt-get update -qq || true
    local gcc_pkg libc_pkg
    gcc_pkg=gcc-$(cc_for "$t" | sed 's/-gcc$//')
    libc_pkg=libc6-dev-$arch-cross
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        rustc-web cargo-web "libstd-rust-web-dev:$arch" "$gcc_pkg" "$libc_pkg" qemu-user >/dev/null
}

status=0
for t in $TARGETS; do
    have_toolchain "$t" || install_toolchain "$t"
    upper=$(echo "$t" | tr 'a-z-' 'A-Z_')
    export "CARGO_TARGET_${upper}_LINKER=$(cc_for "$t")"
    export "CARGO_TARGET_${upper}_RUNNER=$(qemu_for "$t") -L $(sysroot_for "$t")"
    common=(--locked --release --target "$t" --target-dir target/cross)
    echo "== cross: $t ($("$RUSTC" --version))"
    start=$(date +%s)
    RUSTC=$RUSTC "$CARGO" test "${common[@]}" -p fruits-formats --lib || status=1
    RUSTC=$RUSTC "$CARGO" test "${common[@]}" -p fruits-core --lib \
        --test kernels --test ort_parity --test bad_input --test wrong_model --test embedder \
        -- --nocapture --test-threads 1 2>&1 | grep -v '^\s*Compiling' || status=1
    echo "cross: $t built and tested in $(( $(date +%s) - start )) s"
done
[ "$status" -eq 0 ] && echo "cross: clean" || echo "cross: FAILED" >&2
exit "$status"
