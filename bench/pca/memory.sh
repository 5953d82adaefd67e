#!/usr/bin/env bash
# Peak RSS of `aggregator run` at 100,000 vs 1,000,000 rows (shards of 10,000), rows/s,
# effective read bandwidth vs a numpy memcpy. 1M rows = 5.1 GB of shards: generated,
# measured, deleted. Usage: bench/pca/memory.sh   (needs /usr/bin/time)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
BIN=$ROOT/target/release/aggregator; WORK=${WORK:-/tmp/fruits-pca-mem}
(cd "$ROOT" && cargo build --release -p fruits-aggregator)
df -h "$(dirname "$WORK")"
for ROWS in 100000 1000000; do
  D=$WORK/$ROWS; rm -rf "$D"; mkdir -p "$D"
  "$BIN" synth --rows $ROWS --dim 1280 --shards $((ROWS / 10000)) --out "$D/data" > /dev/null
  bytes=$(du -sb "$D/data/incoming" | cut -f1)
  "$BIN" run --input "$D/data" --output "$D/out" --k 50 --run-id warmup > /dev/null   # page cache
  /usr/bin/time -v "$BIN" run --input "$D/data" --output "$D/out" --k 50 --run-id m > /dev/null 2> "$D/time.txt"
  python3 - "$D" "$ROWS" "$bytes" <<'PY'
import json, re, sys
d, rows, nbytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t = open(f"{d}/time.txt").read(); tm = json.load(open(f"{d}/out/runs/m/report.json"))["timings"]
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024
print(json.dumps({"rows": rows, "shard_bytes": nbytes, "peak_rss_mib": rss / 2**20, "timings_ms": tm,
                  "rows_per_s_sketch": rows / tm["sketch_ms"] * 1e3, "read_gb_per_s_sketch": nbytes / tm["sketch_ms"] / 1e6,
                  "rows_per_s_total": rows / tm["total_ms"] * 1e3}))
PY
  rm -rf "$D"
done
# Memory bandwidth: numpy copy of a 1 GiB float32 array into a preallocated one, best of 5,
# counted as bytes read (1 GiB) per second (the copy also writes 1 GiB).
python3 -c "
import numpy as np, time
a = np.ones(2**28, np.float32); b = np.empty_like(a); ts = []
for _ in range(5):
    t = time.perf_counter(); np.copyto(b, a); ts.append(time.perf_counter() - t)
print('numpy copy 1 GiB: %.2f GB/s read (+ same written), best of 5' % (a.nbytes / min(ts) / 1e9))"
