#!/usr/bin/env bash
# Issue-7 evidence: which heads on MobileNetV2 embeddings recognise the photos held out
# whole from the tuxpaint-derived set. Builds the set, embeds it with `fruits embed`,
# then compares heads in scikit-learn (compare_heads.py). Usage: bench/recognition/run.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/fruits-heads}; BIN=$ROOT/target/release/fruits
(cd "$ROOT" && cargo build --release -p fruits-cli)
rm -rf "$WORK"; mkdir -p "$WORK"; cd "$WORK"
"$BIN" dataset build --photos "$ROOT/data/tuxpaint/fruit" --out fruit > /dev/null
"$BIN" embed fruit/Training --out train.jsonl
"$BIN" embed fruit/Test --out test.jsonl
python3 "$HERE/compare_heads.py" train.jsonl test.jsonl
