#!/usr/bin/env python3
"""Issue-20 benchmark: the int8 model against the f32 one, side by side in ONE run.

Times, interleaved round by round, single thread, batch 1, on the same preprocessed tensors:
  ours_f32   fruits-core (tract) running the f32 model (its `batch1` plan, what Embedder runs)
  ours_int8  fruits-core (tract) running the int8 QDQ model
  ort_f32    ONNX Runtime, f32 model
  ort_int8   ONNX Runtime, the same int8 QDQ model (its int8 kernels, full graph optimisation)
and measures parity on every real fruit photo (cosine of each int8 embedding to the f32 one
of the same runtime, min and mean), file sizes, cold start (load + optimise, median of 5
fresh loads) and peak RSS of one photo (ours with each model, Python + ORT with the int8 one).
FRUITS_BIN: the `fruits` binary (default target/release/fruits).

Usage: int8.py BENCH_BIN OUT_DIR [--rounds R] [--per-round K]   (prints one JSON object)
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from ort_reference import preprocess, to_tensor  # noqa: E402
from bench import ort_session  # noqa: E402  the same ORT settings as the f32 benchmark

MODELS = ROOT / "models"
F32 = MODELS / "mobilenetv2-1.0-224-embed.json"
INT8 = MODELS / "mobilenetv2-1.0-224-embed-int8.json"


class Ours:
    """One `embed serve` process holding one model's batch-1 plan."""

    def __init__(self, bench_bin, manifest, tensors):
        self.proc = subprocess.Popen([bench_bin, "serve", str(manifest), str(tensors)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ask("")  # the ready line

    def ask(self, cmd):
        if cmd:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait()


def cosines(a, b):
    return [float(x @ y / np.linalg.norm(x) / np.linalg.norm(y)) for x, y in zip(a, b)]


def fruits_embed(manifest, photos):
    out = subprocess.run([os.environ.get("FRUITS_BIN", str(ROOT / "target/release/fruits")), "embed", "--manifest", str(manifest), *map(str, photos)],
                         capture_output=True, text=True, check=True).stdout
    rows = {r["path"]: np.asarray(r["embedding"], np.float32) for r in map(json.loads, out.splitlines())}
    return [rows[str(p)] for p in photos]


def peak_rss_mb(cmd):
    """Peak resident memory of `cmd`, in MB, from GNU time."""
    run = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=True)
    kb = next(line.split(":")[1] for line in run.stderr.splitlines() if "Maximum resident" in line)
    return int(kb) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_bin")
    ap.add_argument("out_dir", type=pathlib.Path)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--per-round", type=int, default=20)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    f32m, int8m = json.loads(F32.read_text()), json.loads(INT8.read_text())
    spec, oname = f32m["input"], f32m["output"]["name"]
    feed = lambda x: {spec["name"]: x}

    photos = sorted((ROOT / "data/tuxpaint/fruit").glob("*.png"))
    xs = [to_tensor(preprocess(p, spec["width"], spec["height"]), spec) for p in photos]
    tensors = args.out_dir / "int8-tensors.f32"
    np.concatenate([x.reshape(-1) for x in xs[:16]]).astype("<f4").tofile(tensors)
    res = {"onnxruntime": ort.__version__, "threads": 1, "batch": 1, "photos": len(photos)}
    res["file_bytes"] = {"f32": (MODELS / f32m["file"]).stat().st_size, "int8": (MODELS / int8m["file"]).stat().st_size}

    # Parity over every real photo: ours through `fruits embed` (decode included), ORT on
    # Pillow's tensors; each int8 embedding against the f32 one of the same runtime.
    ort_f32, ort_int8 = ort_session(str(MODELS / f32m["file"])), ort_session(str(MODELS / int8m["file"]))
    ours = cosines(fruits_embed(INT8, photos), fruits_embed(F32, photos))
    theirs = cosines([ort_int8.run([oname], feed(x))[0][0] for x in xs], [ort_f32.run([oname], feed(x))[0][0] for x in xs])
    res["cosine_int8_to_f32"] = {
        "ours": {"min": min(ours), "mean": statistics.mean(ours)},
        "ort": {"min": min(theirs), "mean": statistics.mean(theirs)},
    }

    sides = {"ours_f32": Ours(args.bench_bin, F32, tensors), "ours_int8": Ours(args.bench_bin, INT8, tensors)}
    for s in sides.values():
        s.ask("run batch1 10")
    ort_sides = {"ort_f32": ort_f32, "ort_int8": ort_int8}
    for sess in ort_sides.values():
        for i in range(10):
            sess.run([oname], feed(xs[i % 16]))
    times = {name: [] for name in [*sides, *ort_sides]}
    n = 0
    for _ in range(args.rounds):
        for name, s in sides.items():
            times[name] += s.ask(f"run batch1 {args.per_round}")["ms"]
        for name, sess in ort_sides.items():
            for _ in range(args.per_round):
                x = xs[n % 16]
                n += 1
                t = time.perf_counter()
                sess.run([oname], feed(x))
                times[name].append((time.perf_counter() - t) * 1e3)
    for s in sides.values():
        s.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    res["inference_median_ms"] = med
    res["ratios"] = {
        "ours_int8_vs_ort_int8": med["ours_int8"] / med["ort_int8"],
        "ours_int8_vs_ours_f32": med["ours_int8"] / med["ours_f32"],
        "ort_int8_vs_ort_f32": med["ort_int8"] / med["ort_f32"],
    }
    res["samples_each"] = len(times["ort_f32"])

    # Cold start: a fresh process loads and optimises the model (median of `embed cold`).
    cold = {}
    for name, manifest in (("ours_f32", F32), ("ours_int8", INT8)):
        r = json.loads(subprocess.run([args.bench_bin, "cold", str(manifest), "5"], capture_output=True, text=True,
                                      check=True).stdout.splitlines()[-1])
        cold[name] = r
    res["cold_start"] = cold

    # Peak RSS of one photo embedded by a fresh process: `fruits embed` with each model, and
    # Python + ONNX Runtime with the int8 one.
    photo = str(photos[0])
    fruits = os.environ.get("FRUITS_BIN", str(ROOT / "target/release/fruits"))
    res["peak_rss_mb"] = {
        "ours_f32": peak_rss_mb([fruits, "embed", "--manifest", str(F32), photo]),
        "ours_int8": peak_rss_mb([fruits, "embed", "--manifest", str(INT8), photo]),
        "python_ort_int8": peak_rss_mb([sys.executable, str(ROOT / "bench/embed/ort_one.py"), str(INT8), photo]),
    }
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
