#!/usr/bin/env bash
# The project's one test command (the README names it; .ci/run calls it). Sets up what the
# tests need, then runs every test suite, each as a timed phase (table at the end).
#
#   scripts/test.sh                  the default tier, what CI runs (budget: 30 minutes warm)
#   FRUITS_FULL=1 scripts/test.sh    the default tier plus the full tier: the tests marked
#                                    #[ignore = "full tier: ..."], every phone test under QEMU
#                                    and the libraries as the apps ship them (README, "Tests")
#
# Host build artefacts go to ~/.cache/fruits/target (CARGO_TARGET_DIR overrides), outside the
# checkout, so that a fresh clone (CI's) reuses every dependency compiled by an earlier run and
# rebuilds only the workspace's own crates. Scratch files of the tests stay in ./target.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/phases.sh

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fruits/target}
# Every build here starts from a fresh clone: incremental state would only cost time and disk.
export CARGO_INCREMENTAL=0
FULL=${FRUITS_FULL:-0}
BIN=$CARGO_TARGET_DIR/debug
ignored=()
[ "$FULL" = 1 ] && ignored=(--include-ignored)

# Each clone path compiles its own copies of the workspace crates into the shared folder: past
# 40 GiB, start it afresh (one cold build) rather than fill the disk.
if [ -d "$CARGO_TARGET_DIR" ] && [ "$(du -s --block-size=1G "$CARGO_TARGET_DIR" | cut -f1)" -gt 40 ]; then
    echo "test.sh: $CARGO_TARGET_DIR is over 40 GiB; removing it" >&2
    rm -rf "$CARGO_TARGET_DIR"
fi

cargo_tests() {
    local log=target/cargo-test.log status=0
    mkdir -p target
    cargo test --workspace --all-targets --locked -- "${ignored[@]}" 2>&1 | tee "$log" || status=$?
    suite_times "$log"
    return "$status"
}

phase setup bash scripts/setup.sh
phase fmt cargo fmt --all --check
phase clippy cargo clippy --workspace --all-targets --locked -- -D warnings
# One feature set for every build of the run (the SDK tests and Spark reuse these binaries).
phase build cargo test --workspace --all-targets --locked --no-run
phase "cargo test" cargo_tests
phase "doc tests" cargo test --workspace --doc --locked
# The SDK through its generated bindings: Kotlin on the JVM (JNA) and Python (pytest).
phase "sdk: kotlin + python" bash bindings/tests/run.sh
# The Spark path on EMR, in local mode against Garage (uses the aggregator just built).
phase "spark local mode" env FRUITS_AGGREGATOR="$BIN/aggregator" \
    python3 -m pytest -q -p no:cacheprovider cloud-aggregator/emr/tests
phase "infra lint" bash scripts/check-infra.sh
# Phone-class builds: the core cross-built for ARM64 and ARMv7, its phone tests under QEMU.
for target in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
    phase "cross ${target%%-*}" env CROSS_TARGETS=$target FRUITS_FULL="$FULL" bash scripts/cross.sh
done
