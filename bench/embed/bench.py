#!/usr/bin/env python3
"""Issue-2 benchmark driver: tract (our `embed` bench binary) vs ONNX Runtime,
side by side in ONE run, interleaved, single thread, batch 1, same ONNX file and
the same preprocessed tensors. Prints one JSON object.

Usage: bench.py BENCH_BIN OUT_DIR [--rounds R] [--per-round K] [--variants a,b] [--keras]

--keras adds the original prototype's stack to the same interleaved rounds: Keras
MobileNetV2 (include_top=False, average pooling: the same 1280-d embedding) on
TensorFlow, one intra-op and one inter-op thread, a traced `tf.function`. Its weights
are random (ImageNet weights need the internet), which changes no operation's cost.
"""
import argparse
import json
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from ort_reference import preprocess, to_tensor  # noqa: E402

MANIFEST = ROOT / "models/mobilenetv2-1.0-224-embed.json"


def ort_session(model_bytes):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench_bin")
    ap.add_argument("out_dir", type=pathlib.Path)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=20)
    ap.add_argument("--variants", default="symbolic,batch1")
    ap.add_argument("--keras", action="store_true", help="also time Keras MobileNetV2 on TensorFlow")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: infer,cold,split")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(MANIFEST.read_text())
    spec = manifest["input"]
    model_bytes = (MANIFEST.parent / manifest["file"]).read_bytes()
    res = {"onnxruntime": ort.__version__, "threads": 1, "batch": 1}

    # Same tensors for both: Pillow preprocessing of real photos.
    photos = sorted((ROOT / "data/tuxpaint/fruit").glob("*.png"))[:16]
    xs = [to_tensor(preprocess(p, spec["width"], spec["height"]), spec) for p in photos]
    tensors = out / "tensors.f32"
    np.concatenate([x.reshape(-1) for x in xs]).astype("<f4").tofile(tensors)
    res["tensors"] = len(xs)

    sess = ort_session(model_bytes)
    feed = lambda x: {spec["name"]: x}
    oname = manifest["output"]["name"]

    if "infer" not in skip:
        variants = args.variants.split(",")
        proc = subprocess.Popen([args.bench_bin, "serve", str(MANIFEST), str(tensors)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ask = lambda cmd: (proc.stdin.write(cmd + "\n"), proc.stdin.flush(), json.loads(proc.stdout.readline()))[2]
        json.loads(proc.stdout.readline())
        # Parity on tensor 0 and warm-up of every plan.
        ref = sess.run([oname], feed(xs[0]))[0][0]
        res["parity_max_abs"] = {}
        for v in variants:
            emb = np.asarray(ask(f"output {v}")["embedding"], np.float32)
            res["parity_max_abs"][v] = float(np.abs(emb - ref).max())
            ask(f"run {v} 10")
        for i in range(10):
            sess.run([oname], feed(xs[i % len(xs)]))
        times = {v: [] for v in variants}
        times["ort"] = []
        keras = keras_embedder(spec) if args.keras else None
        if keras is not None:
            res["tensorflow"] = keras.version
            times["keras"] = []
            for i in range(10):
                keras(xs[i % len(xs)])
        k = args.per_round
        n = 0
        for r in range(args.rounds):
            for v in variants:
                times[v] += ask(f"run {v} {k}")["ms"]
            for _ in range(k):
                x = xs[n % len(xs)]
                n += 1
                s = time.perf_counter()
                sess.run([oname], feed(x))
                times["ort"].append((time.perf_counter() - s) * 1e3)
            for _ in range(k if keras is not None else 0):
                x = xs[n % len(xs)]
                n += 1
                s = time.perf_counter()
                keras(x)
                times["keras"].append((time.perf_counter() - s) * 1e3)
        ask("quit") if False else proc.stdin.write("quit\n")
        proc.stdin.close()
        proc.wait()
        med = {v: statistics.median(t) for v, t in times.items()}
        res["inference_median_ms"] = med
        res["inference_p10_ms"] = {v: float(np.percentile(t, 10)) for v, t in times.items()}
        res["inference_ratio_vs_ort"] = {v: med[v] / med["ort"] for v in variants}
        if keras is not None:
            res["keras_ratio_vs_ours_batch1"] = med["keras"] / med["batch1"] if "batch1" in med else None
        res["inference_samples_each"] = len(times["ort"])

    if "cold" not in skip:
        # Three sides per round, each a fresh process: ours from the ONNX model,
        # ours from the plan cache (written once below, as a first launch does), ORT.
        cache = out / "plan-cache"
        shutil.rmtree(cache, ignore_errors=True)

        def ours_cold(*cache_dir):
            p = subprocess.run([args.bench_bin, "cold", str(MANIFEST), "1", *map(str, cache_dir)],
                               capture_output=True, text=True, check=True)
            return json.loads(p.stdout)

        first = ours_cold(cache)
        assert first["origins"] == ["Onnx"], first
        ours, cached, theirs = [], [], []
        for _ in range(5):
            ours.append(ours_cold()["cold_ms"][0])
            hit = ours_cold(cache)
            assert hit["origins"] == ["Cache"], hit
            cached.append(hit["cold_ms"][0])
            s = time.perf_counter()
            ort_session((MANIFEST.parent / manifest["file"]).read_bytes())
            theirs.append((time.perf_counter() - s) * 1e3)
        res["cold_start_ms"] = {"ours_median": statistics.median(ours),
                                "ours_plan_cache_median": statistics.median(cached),
                                "ort_session_median": statistics.median(theirs),
                                "ours_first_launch_writing_cache": first["cold_ms"][0],
                                "cache_write_finished_after": first["store_wait_ms"][0],
                                "ours": ours, "ours_plan_cache": cached, "ort": theirs}

    if "split" not in skip:
        jpeg = out / "photo-12mp.jpg"
        if not jpeg.exists():
            src = Image.open(ROOT / "data/tuxpaint/fruit/apple_red.png")
            big = preprocess_flat(src).resize((4000, 3000), Image.BICUBIC)
            big.save(jpeg, quality=90)
        res["split_jpeg"] = {"path": str(jpeg), "bytes": jpeg.stat().st_size}
        iters = 7
        anchor = {"decode_ms": [], "resize_normalise_ms": [], "inference_ms": [], "total_ms": []}
        ours_runs = []
        for _ in range(3):
            p = subprocess.run([args.bench_bin, "split", str(MANIFEST), str(jpeg), str(iters)],
                               capture_output=True, text=True, check=True)
            ours_runs.append(json.loads(p.stdout))
            for _ in range(iters):
                t0 = time.perf_counter()
                im = Image.open(jpeg)
                im.draft("RGB", (spec["width"], spec["height"]))
                im = im.convert("RGB")
                im.load()
                t1 = time.perf_counter()
                w, h = im.size
                side = min(w, h)
                l, t = (w - side) // 2, (h - side) // 2
                x = to_tensor(im.crop((l, t, l + side, t + side)).resize((spec["width"], spec["height"]), Image.BILINEAR), spec)
                t2 = time.perf_counter()
                sess.run([oname], feed(x))
                t3 = time.perf_counter()
                for key, val in zip(anchor, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                    anchor[key].append(val * 1e3)
        res["split_anchor_pillow_draft_ort"] = {k: statistics.median(v) for k, v in anchor.items()}
        res["split_anchor_pillow_draft_ort"]["decoded_size"] = list(im.size)
        ours = {}
        for label in ours_runs[0]:
            ours[label] = {k: statistics.median(r[label][k] for r in ours_runs) for k in ours_runs[0][label]}
        res["split_ours"] = ours
    print(json.dumps(res, indent=1))


def keras_embedder(spec):
    """A callable timing Keras MobileNetV2 on one NHWC tensor, single-threaded."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = tf.keras.applications.MobileNetV2(
        input_shape=(spec["height"], spec["width"], 3), include_top=False, pooling="avg", weights=None)
    run = tf.function(lambda x: model(x, training=False))

    def embed(x):
        return run(tf.constant(x)).numpy()

    embed.version = tf.__version__
    assert embed(np.zeros((1, spec["height"], spec["width"], 3), np.float32)).shape == (1, 1280)
    return embed


def preprocess_flat(im):
    if im.mode in ("RGBA", "LA", "PA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return im.convert("RGB")


if __name__ == "__main__":
    main()
