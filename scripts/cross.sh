#!/usr/bin/env bash
# Phone-class builds, verified: cross-builds the on-device core for ARM Linux with Debian's
# Rust toolchain and runs the tests that matter on a phone under QEMU user-mode emulation.
# scripts/test.sh (and so CI) runs it once per target after the host suites.
#
#   scripts/cross.sh                                           both targets, default tier
#   CROSS_TARGETS=aarch64-unknown-linux-gnu scripts/cross.sh   one target
#   FRUITS_FULL=1 scripts/cross.sh                             full tier (below)
#   CROSS_SIZES=1 scripts/cross.sh                             full tier, plus the size report
#
# For each target (aarch64-unknown-linux-gnu = ARM64 phones, armv7-unknown-linux-gnueabihf =
# the ARMv7 class of Android's armeabi-v7a), in one `--release` build shared by every test
# binary. The default tier (CI) runs:
#   - fruits-formats' and fruits-core's unit tests (shard and artifact round trips and
#     signatures, preprocessing, header sniffing, manifest, queue: 32-bit `usize` on ARMv7);
#   - kernels (which tract kernels run; fails if ARM64 falls back to tract's generic code)
#     and ort_parity (embeddings within 1e-4 of ONNX Runtime through the target's NEON
#     kernels, and preprocessing against Pillow: the test runs the host's python3 on
#     scripts/ort_reference.py, which an emulated process can exec natively);
#   - on ARM64, large_jpeg (libjpeg-turbo's NEON scaled decode against the full decode, and
#     damaged large JPEGs refused) and int8_golden (the int8 model's embeddings of two photos
#     through NEON, against the x86-64 host's, within the tolerance the test states);
#   - on ARM64, the UniFFI `bindings` crate (fruits-ffi): its cdylib and its golden test (the
#     SDK facade embeds the golden photo within 1e-3 of the host's values and throws its typed
#     errors), in the same invocation so that the library shares the tests' build;
#   - on ARM64, the kernel probe (mobile-core/kernel-probe) built with the `mobile` profile the
#     apps ship (fat LTO, one codegen unit, stripped) and run: tract registers its kernels
#     through linker sections, and the probe fails unless the LTO build still selects the
#     NEON ones. It builds only tract-linalg, so it is cached after the first run.
# The full tier (FRUITS_FULL=1) adds, on both targets: bad_input and wrong_model (typed
# refusals of bad photos and models; the default tier runs them on the host), large_jpeg on
# ARMv7 too, plan_cache (the cached graph read back and re-optimised with the target's
# kernels), the golden test on ARMv7 too, and the bindings library itself built with the
# `mobile` profile (a second full build per target) and checked to carry tract's SIMD kernels.
# Emulated timings mean nothing: none are taken.
#
# ARMv7 and NEON: tract picks its ARMv7 NEON kernels by reading /proc/cpuinfo, and QEMU 7.2
# user mode (Debian 12) shows the emulated process the *host's* /proc/cpuinfo, which has no
# "neon". Every phone-class ARMv7 CPU has NEON (Android's armeabi-v7a assumes it), so the
# ARMv7 run forces it with TRACT_CPU_ARM32_NEON=true: the parity tests then check tract's
# ARMv7 NEON assembly, as a phone runs it. ARM64 needs no such help (Advanced SIMD is
# baseline there) and is checked as detected.
#
# Toolchain, installed only when missing (idempotent): Debian's rustc-web/cargo-web 1.96
# (/usr/bin/rustc, /usr/bin/cargo: called by absolute path because rustup's 1.95 shims
# come first on PATH), the ARM standard libraries libstd-rust-web-dev:arm64/:armhf, the gcc
# cross linkers with their C libraries, and qemu-user. Builds go to a target folder kept
# outside the checkout (~/.cache/fruits/cross-target, CROSS_TARGET_DIR overrides), like
# Garage's binary: a cold ARM build of tract takes 10-25 minutes per target on 2 cores, and
# a fresh clone then rebuilds only the workspace's own crates. The test builds carry no
# debug info (faster links, smaller binaries); the shipped profile has none either.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=${CROSS_TARGETS:-"aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf"}
TARGET_DIR=${CROSS_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fruits/cross-target}
# Where a standard library unpacked by hand lives (see fetch_std_deb), kept across runs.
STD_CACHE=/var/cache/fruits-cross
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
CARGO=/usr/bin/cargo
# Flags for the targets come from this script only (a RUSTFLAGS from the caller would
# silently replace the per-target ones below and rebuild everything).
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET
export CARGO_PROFILE_RELEASE_DEBUG=false
FULL=${FRUITS_FULL:-0}
[ "${CROSS_SIZES:-0}" = 1 ] && FULL=1

log() { echo "cross: $*" >&2; }

# target -> Debian architecture, C cross compiler, QEMU, C library prefix for QEMU
deb_arch() { case "$1" in aarch64-*) echo arm64 ;; armv7-*) echo armhf ;; *) log "unknown target $1"; return 1 ;; esac; }
gnu_triple() { case "$1" in aarch64-*) echo aarch64-linux-gnu ;; armv7-*) echo arm-linux-gnueabihf ;; esac; }
qemu_for() { case "$1" in aarch64-*) echo qemu-aarch64 ;; armv7-*) echo qemu-arm ;; esac; }
qemu_cpu() { case "$1" in aarch64-*) echo cortex-a76 ;; armv7-*) echo cortex-a15 ;; esac; }

source scripts/apt.sh

# Host side: Debian's rustc/cargo, the cross gcc and C library of every target, QEMU.
install_host_tools() {
    local missing=() t
    dpkg-query -W -f '${Status}\n' rustc-web 2>/dev/null | grep -q 'ok installed' || missing+=(rustc-web)
    dpkg-query -W -f '${Status}\n' cargo-web 2>/dev/null | grep -q 'ok installed' || missing+=(cargo-web)
    for t in $TARGETS; do
        command -v "$(gnu_triple "$t")-gcc" >/dev/null || missing+=("gcc-$(gnu_triple "$t")")
        [ -d "/usr/$(gnu_triple "$t")/lib" ] || missing+=("libc6-dev-$(deb_arch "$t")-cross")
        command -v "$(qemu_for "$t")" >/dev/null || missing+=(qemu-user)
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    apt_update
    apt_install "${missing[@]}"
}

# The target's standard library, built by Debian with the very rustc-web version installed.
# Sets SYSROOT to the --sysroot to pass to rustc, or to nothing when it is installed in /usr.
ensure_std() {
    local t=$1 arch ver added=0
    arch=$(deb_arch "$t")
    ver=$(dpkg-query -W -f '${Version}' rustc-web)
    SYSROOT=
    if [ "$(dpkg-query -W -f '${Version}' "libstd-rust-web-dev:$arch" 2>/dev/null)" = "$ver" ]; then
        return 0
    fi
    SYSROOT=$STD_CACHE/$ver/$arch/usr
    if [ -d "$SYSROOT/lib/rustlib/$t/lib" ]; then
        return 0
    fi
    # The normal way: a foreign-architecture package.
    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        dpkg --add-architecture "$arch"
        added=1
        APT_LISTS_FRESH=0
    fi
    apt_update
    if apt_install "libstd-rust-web-dev:$arch=$ver"; then
        SYSROOT=
        return 0
    fi
    # A broken index for that architecture also breaks `apt-get update` for everyone on this
    # machine: take the architecture back out if this script added it and nothing uses it.
    if [ "$added" = 1 ] && ! dpkg-query -W -f '${Architecture}\n' 2>/dev/null | grep -qx "$arch"; then
        dpkg --remove-architecture "$arch"
    fi
    log "apt cannot install libstd-rust-web-dev:$arch=$ver; unpacking it by hand instead"
    fetch_std_deb "$arch" "$ver" "$t"
}

# Fallback when apt's index for the architecture is unusable: downloads the same package
# (same source upload as the installed rustc-web) from the pool of the archive rustc-web was
# installed from, checks its sha256 against that archive's Packages index for the
# architecture, and unpacks it into $STD_CACHE (not into /usr: dpkg does not know it). NOTE:
# the index comes from the same mirror and is not checked against the signed Release here,
# which is apt's job when it works; the script says loudly when it takes this path.
fetch_std_deb() {
    local arch=$1 ver=$2 t=$3 uri repo dists="" d tmp stanza file sha
    uri=$(apt-get download --print-uris "rustc-web=$ver" | head -1 | cut -d"'" -f2)
    repo=${uri%%/pool/*}
    tmp=$(mktemp -d)
    for d in $(apt-get indextargets --format '$(BASE_URI)' | sort -u | grep "^$repo/dists/"); do
        curl -fsS "${d}main/binary-$arch/Packages.xz" | xz -dc > "$tmp/Packages" || continue
        # The paragraph for that package and exact version (index(): versions hold "+" and "~").
        stanza=$(awk -v v="$ver" 'BEGIN { RS = "" } index("\n" $0 "\n", "\nPackage: libstd-rust-web-dev\n") && index($0 "\n", "\nVersion: " v "\n")' "$tmp/Packages")
        [ -n "$stanza" ] && { dists=$d; break; }
    done
    [ -n "$dists" ] || { log "no libstd-rust-web-dev $ver for $arch in $repo"; return 1; }
    file=$(sed -n 's/^Filename: //p' <<<"$stanza")
    sha=$(sed -n 's/^SHA256: //p' <<<"$stanza")
    log "fetching $repo/$file (index ${dists}main/binary-$arch, sha256 $sha)"
    curl -fsS -o "$tmp/std.deb" "$repo/$file"
    echo "$sha  $tmp/std.deb" | sha256sum -c --quiet
    mkdir -p "$STD_CACHE/$ver"
    rm -rf "$STD_CACHE/$ver/$arch.partial"
    dpkg-deb -x "$tmp/std.deb" "$STD_CACHE/$ver/$arch.partial"
    [ -d "$STD_CACHE/$ver/$arch.partial/usr/lib/rustlib/$t/lib" ]
    mv "$STD_CACHE/$ver/$arch.partial" "$STD_CACHE/$ver/$arch"
    rm -rf "$tmp"
}

# The UniFFI bindings crate's package name.
bindings_package() {
    sed -n 's/^name *= *"\(.*\)"/\1/p' bindings/Cargo.toml | head -1
}

# SIMD kernels that must be in the ARM builds: a matrix multiplication kernel, and on ARM64
# the channel-contiguous depthwise convolution MobileNetV2 spends most of its time in.
simd_kernels() {
    case "$1" in
        aarch64-*) echo arm64simd_depthwise_c_f32 arm64simd_mmm_f32_ ;;
        armv7-*) echo armv7neon_mmm_f32_ ;;
    esac
}

# CROSS_SIZES=1 (BENCHMARKS.md, not CI): the shipped library against the --release cdylib
# the tests linked, both stripped with the target's
# binutils; ELF sections of the shipped one; and the symbol bytes per crate of the release
# one (`nm --size-sort`, demangled, grouped by the first path segment; the shipped one has
# no symbols left to count).
sizes() {
    local t=$1 lib=$2 so=$3 rel gnu
    gnu=$(gnu_triple "$t")
    rel=$TARGET_DIR/$t/release/deps/lib$(echo "$lib" | tr - _).so
    "$gnu-strip" --strip-all -o "$rel.stripped" "$rel"
    "$gnu-strip" --strip-all -o "$so.stripped" "$so"
    echo "== sizes $t: mobile $(stat -c %s "$so") bytes as built ($(stat -c %s "$so.stripped") after strip --strip-all);" \
        "release $(stat -c %s "$rel.stripped") bytes after strip --strip-all ($(stat -c %s "$rel") with symbols and line tables)"
    "$gnu-size" -A "$so" | awk 'NR > 2 && $2 > 20000 { printf "    mobile section %-20s %9d\n", $1, $2 }'
    "$gnu-nm" -S --size-sort -C -t d "$rel" \
        | awk '{ size = $2 + 0; $1 = $2 = $3 = ""; name = substr($0, 4)
                 sub(/^_?</, "", name)
                 n = split(name, parts, "::"); krate = (n > 1) ? parts[1] : "(unnamed)"
                 sub(/^.* as /, "", krate); sub(/<.*/, "", krate)
                 bytes[krate] += size; total += size }
               END { for (k in bytes) printf "%9d %5.1f%%  %s\n", bytes[k], 100 * bytes[k] / total, k }' \
        | sort -rn | head -15 | sed 's/^/    release symbols /'
}

install_host_tools
"$RUSTC" --version >/dev/null
status=0
report=()
for t in $TARGETS; do
    ensure_std "$t"
    sysroot=$SYSROOT
    upper=$(echo "$t" | tr 'a-z-' 'A-Z_')
    export "CARGO_TARGET_${upper}_LINKER=$(gnu_triple "$t")-gcc"
    # QEMU runs the test binaries as a phone-class CPU (Cortex-A76: NEON, fp16, dot product,
    # no SVE; Cortex-A15: ARMv7 with NEON). The C library must be the cross one QEMU's -L
    # loader comes from: libstd-rust-web-dev:arm64 pulls in libc6:arm64, a different build in
    # /lib/aarch64-linux-gnu that the loader would otherwise pick up (threads then hang).
    export "CARGO_TARGET_${upper}_RUNNER=$(qemu_for "$t") -cpu $(qemu_cpu "$t") -L /usr/$(gnu_triple "$t") -E LD_LIBRARY_PATH=/usr/$(gnu_triple "$t")/lib"
    if [ -n "$sysroot" ]; then
        export "CARGO_TARGET_${upper}_RUSTFLAGS=--sysroot $sysroot"
    fi
    neon=()
    case "$t" in armv7-*) neon=(env TRACT_CPU_ARM32_NEON=true) ;; esac
    common=(--locked --release --target "$t" --target-dir "$TARGET_DIR")
    echo "== cross: $t ($("$RUSTC" --version), std ${sysroot:-/usr}, $("$(qemu_for "$t")" --version | head -1))"
    start=$(date +%s)
    log_file="$TARGET_DIR/$t-tests.log"
    mkdir -p "$TARGET_DIR"
    # One invocation for every package, so that cargo unifies their features once: tested
    # apart, fruits-core's dev-dependencies (proptest) switch on features of crates tract
    # depends on, and the bindings library would rebuild tract and all above it.
    lib=$(bindings_package)
    tests=(-p fruits-formats -p fruits-core --lib --test kernels --test ort_parity)
    if [ "$FULL" = 1 ]; then
        tests+=(--test bad_input --test wrong_model --test large_jpeg --test plan_cache --test int8_golden -p "$lib" --test golden)
    else
        case "$t" in aarch64-*) tests+=(--test large_jpeg --test int8_golden -p "$lib" --test golden) ;; esac
    fi
    if ! "${neon[@]}" "$CARGO" test "${common[@]}" "${tests[@]}" -- --nocapture 2>&1 | tee "$log_file"; then
        status=1
    fi
    built=$(( $(date +%s) - start ))
    # The kernel report, from the kernels test's output.
    kernels=$(grep -E '^(target arch|depthwise|f32/f16/int matmul)' "$log_file" | sed 's/^/    /' || true)
    report+=("$t (${neon[*]:-detected}):" "$kernels")

    # The default tier: the kernel probe, built with the `mobile` profile (fat LTO, one codegen
    # unit, stripped), run under QEMU: the SIMD kernels must survive LTO and be selected.
    case "$t" in aarch64-*)
        if probe=$("$CARGO" run --locked --quiet --profile mobile --target "$t" --target-dir "$TARGET_DIR" \
            -p fruits-kernel-probe); then
            report+=("    kernel probe (mobile profile, fat LTO): SIMD kernels selected")
        else
            report+=("    kernel probe (mobile profile, fat LTO): FELL BACK"); status=1
        fi
        report+=("$(sed 's/^/      /' <<<"$probe")")
        ;;
    esac

    # The full tier: the bindings library as the apps ship it. The `mobile` profile (fat LTO,
    # one codegen unit) shares nothing with the --release build: a second full build per target
    # (BENCHMARKS.md has its cost and sizes).
    if [ "$FULL" = 1 ]; then
        so=$TARGET_DIR/$t/mobile/lib$(echo "$lib" | tr - _).so
        "$CARGO" rustc --locked --profile mobile --target "$t" --target-dir "$TARGET_DIR" \
            -p "$lib" --lib --crate-type cdylib --quiet || status=1
        if [ -f "$so" ]; then
            report+=("    bindings library $(basename "$so") (mobile profile): $(stat -c %s "$so") bytes")
            # tract registers its kernels through linker sections: check that the link (and
            # LTO) kept the SIMD ones (their names are strings in the library, symbols or not).
            for k in $(simd_kernels "$t"); do
                if grep -qaF "$k" "$so"; then
                    report+=("    bindings library carries $k*")
                else
                    report+=("    bindings library LACKS $k*"); status=1
                fi
            done
        else
            report+=("    bindings library $so MISSING"); status=1
        fi
        if [ "${CROSS_SIZES:-0}" = 1 ]; then
            sizes "$t" "$lib" "$so"
        fi
    fi
    echo "cross: $t built and tested in ${built} s, total $(( $(date +%s) - start )) s"
done

echo "== cross: kernel report"
printf '%s\n' "${report[@]}"
if [ "$status" -eq 0 ]; then echo "cross: clean"; else echo "cross: FAILED" >&2; fi
exit "$status"
