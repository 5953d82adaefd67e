#!/usr/bin/env bash
# Issue-5 benchmark, side by side in one run on the same shards (k = 50):
#   ours        `aggregator run` (rayon, one process)
#   spark path  cloud-aggregator/emr/driver.py on local[2] (Spark schedules `aggregator
#               sketch` per partition, a merge tree and `finalize`)
#   anchor      Spark MLlib PCA(k) on local[2] reading the same rows as Parquet
# Spark session start is excluded from both Spark figures. Usage: bench/spark/run.sh [ROWS]
# Results: $WORK/results.json. REPS (default 2) for best-of-N.
set -euo pipefail
ROWS=${1:-50000}; K=50; REPS=${REPS:-2}; PARTS=${PARTS:-4}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/fruits-spark-bench-$ROWS}; BIN=$ROOT/target/release/aggregator
mkdir -p "$WORK"; cd "$WORK"

(cd "$ROOT" && cargo build --release -p fruits-aggregator --bin aggregator)
[ -d data/incoming ] || "$BIN" synth --rows "$ROWS" --dim 1280 --shards $(( (ROWS + 4999) / 5000 )) --out data > /dev/null
[ -f data.npy ] || python3 "$ROOT/bench/pca/export_npy.py" data data.npy

"$BIN" run --input data --output out --k $K --run-id warmup > /dev/null   # page cache
best=
for i in $(seq "$REPS"); do
  s=$(date +%s.%N); "$BIN" run --input data --output out --k $K --run-id "r$i" > /dev/null; e=$(date +%s.%N)
  t=$(echo "$e - $s" | bc); if [ -z "$best" ] || (( $(echo "$t < $best" | bc) )); then best=$t; fi
done
printf '{"ours_s": %.6f}\n' "$best" > ours.json   # bc prints .79, not JSON
python3 "$HERE/spark_path.py" "$BIN" "$WORK/data" $K "$PARTS" "$REPS" 2> spark-path.log | tee spark-path.json
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 "$ROOT/bench/pca/spark_pca.py" data.npy data.parquet $K "$REPS" 2> mllib.log | tee mllib.json
python3 - "$ROWS" "$(uptime | sed 's/.*load average: //')" <<'PY' | tee results.json
import json, sys
r = {"rows": int(sys.argv[1]), "load_average": sys.argv[2], **json.load(open("ours.json")),
     **json.load(open("spark-path.json")), **json.load(open("mllib.json"))}
r["spark_path_overhead_vs_ours"] = r["spark_path_s"] / r["ours_s"]
r["mllib_vs_spark_path"] = r["spark_mllib_pca_s"] / r["spark_path_s"]
print(json.dumps(r, indent=1))
PY
