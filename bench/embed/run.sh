#!/usr/bin/env bash
# Issue-2 benchmark: tract (fruits-core) vs ONNX Runtime, side by side in one run,
# single thread, batch 1, same ONNX file, same preprocessed tensors.
# Usage: bench/embed/run.sh            (results: $OUT/results.json, default target/bench-embed)
#   BENCH_BIN: an `embed` bench binary built elsewhere (e.g. with -C target-cpu=native)
#   ROUNDS / PER_ROUND: interleaved inference rounds (default 15 x 20 per side)
#   PROFILE=1: also print tract's per-operator profile (symbolic and batch-1 plans)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$ROOT/target/bench-embed}; mkdir -p "$OUT"
MANIFEST=$ROOT/models/mobilenetv2-1.0-224-embed.json
export OMP_NUM_THREADS=1 RAYON_NUM_THREADS=1

cd "$ROOT"
scripts/fetch-photos.sh >/dev/null
source scripts/apt.sh
[ -x /usr/bin/time ] || apt_install time
# libjpeg-turbo's x86 SIMD (the 12 MP split) is built only where nasm is installed.
command -v nasm >/dev/null || apt_install nasm
# Portable build (no target-cpu=native): the release/bench profile the apps' x86 builds use.
cargo build --release -p fruits-cli --bin fruits
BENCH=${BENCH_BIN:-$(cargo bench -p fruits-core --bench embed --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="embed" and m.get("executable"): print(m["executable"])' | tail -1)}
echo "bench binary: $BENCH" >&2

# (a) inference, (b) cold start, (d) 12 MP split -- interleaved with ORT inside bench.py.
# Keras MobileNetV2 on TensorFlow (the prototype's stack) joins the rounds when it is installed.
KERAS=(); python3 -c 'import tensorflow' 2>/dev/null && KERAS=(--keras)
python3 "$HERE/bench.py" "$BENCH" "$OUT" --rounds "${ROUNDS:-15}" --per-round "${PER_ROUND:-20}" "${KERAS[@]}" > "$OUT/main.json"

# (e) the int8 model against the f32 one (issue 20): ours and ORT's, parity, size, cold start.
FRUITS_BIN=target/release/fruits python3 "$HERE/int8.py" "$BENCH" "$OUT" --rounds "${ROUNDS:-15}" \
  --per-round "${PER_ROUND:-20}" > "$OUT/int8.json"

if [ "${PROFILE:-0}" = 1 ]; then
  for v in symbolic batch1; do "$BENCH" profile "$MANIFEST" "$OUT/tensors.f32" "$v" 30 > "$OUT/profile-$v.json"; done
fi

# (c) peak RSS, one photo: `fruits embed` vs the python ORT process doing the same.
PHOTO=$ROOT/data/tuxpaint/fruit/apple_red.png
rss() { /usr/bin/time -v "$@" 2> "$OUT/time.log" >/dev/null; awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$OUT/time.log"; }
ours_kb=$(rss target/release/fruits embed --manifest "$MANIFEST" "$PHOTO")
# The same through the plan cache: the first run writes it, the second reads it.
rm -rf "$OUT/rss-plan-cache"
first_kb=$(rss target/release/fruits embed --manifest "$MANIFEST" --plan-cache "$OUT/rss-plan-cache" "$PHOTO")
cached_kb=$(rss target/release/fruits embed --manifest "$MANIFEST" --plan-cache "$OUT/rss-plan-cache" "$PHOTO")
ort_kb=$(rss python3 "$HERE/ort_one.py" "$MANIFEST" "$PHOTO")
base_kb=$(rss python3 -c 'import numpy, onnxruntime, PIL.Image')

python3 - "$OUT" "$ours_kb" "$first_kb" "$cached_kb" "$ort_kb" "$base_kb" <<'PY' | tee "$OUT/results.json"
import json, os, sys, platform, subprocess
out, ours, first, cached, ort, base = sys.argv[1], *map(int, sys.argv[2:])
r = json.load(open(f"{out}/main.json"))
r["int8"] = json.load(open(f"{out}/int8.json"))
r["peak_rss_mb"] = {"fruits_embed": ours / 1024, "fruits_embed_writing_plan_cache": first / 1024,
                    "fruits_embed_from_plan_cache": cached / 1024, "python_ort_one_photo": ort / 1024,
                    "python_imports_only": base / 1024}
cpu = [l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines() if l.startswith("Model name")]
r["machine"] = {"cpu": cpu[0] if cpu else platform.processor(), "nproc": os.cpu_count()}
print(json.dumps(r, indent=1))
PY
