#!/usr/bin/env bash
# The project's one test command (the README names it; .ci/run calls it).
# Sets up what the tests need, then runs every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo fmt --all --check
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
# The SDK through its generated bindings: Kotlin on the JVM (JNA) and Python (pytest).
bash bindings/tests/run.sh
# The Spark path on EMR, in local mode against Garage (uses the aggregator just built).
FRUITS_AGGREGATOR="$PWD/target/debug/aggregator" python3 -m pytest -q -p no:cacheprovider cloud-aggregator/emr/tests
if [ -x scripts/check-infra.sh ]; then
    bash scripts/check-infra.sh
fi
# Phone-class builds: the core and the bindings library cross-built for ARM64 and ARMv7,
# their phone tests under QEMU, and the library as the apps ship it (`mobile` profile: fat
# LTO, a second build per target; ~4 minutes each with ~/.cache/fruits/cross-target warm).
CROSS_LIB_PROFILE=mobile bash scripts/cross.sh
