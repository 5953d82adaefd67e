#!/usr/bin/env bash
# Recognition benchmark (issue 19), one command: the shipped head (logistic regression on
# unit-length PCA codes, calibrated on photos it never trained on) side by side with the
# heads it was chosen over, on the same embeddings in one run, and the four measures:
# leave-one-photo-out, hard phone-like views, things that are not fruit, a taught class;
# each for the head on k = 192 codes and on the full 1280-d embeddings; plus what each
# family of phone conditions in the training views buys on validation views.
# Release build; a few minutes on 2 cores. Prints the report (JSON on stdout, a summary on
# stderr) and writes target/bench-recognition.json.
# Usage: bench/recognition/run.sh    (FRUITS_MANIFEST=models/mobilenetv2-1.0-224-embed-int8.json:
#        the same measures with the int8 model, its PCA and head trained on its embeddings)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
# The build folder scripts/test.sh uses, so that a benchmark after the tests rebuilds little.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fruits/target}
bash scripts/fetch-photos.sh > /dev/null
echo "date: $(date -u +%F), host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores" >&2
cargo bench --locked -p fruits-e2e --bench recognition
