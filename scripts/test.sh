#!/usr/bin/env bash
# The project's one test command (the README names it; .ci/run calls it).
# Sets up what the tests need, then runs every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked
if [ -x scripts/check-infra.sh ]; then
    bash scripts/check-infra.sh
fi
