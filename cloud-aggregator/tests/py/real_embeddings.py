#!/usr/bin/env python3
"""Real MobileNetV2 embeddings of augmented fruit photos, for the aggregator's tests.

Usage: real_embeddings.py PHOTO_DIR MODEL.onnx VIEWS SEED OUT.f32
Each photo in PHOTO_DIR (*.png) gives VIEWS augmented views (random crop of 55-100%
of the short side, horizontal flip, rotation up to 25 degrees, brightness and
contrast jitter), composited on white, resized to 224x224 (bilinear), scaled to
x / 127.5 - 1 (NHWC RGB) and embedded with ONNX Runtime (input "image", output
"embedding"). OUT.f32 gets the rows as little-endian float32, row-major; the row
count and dimension are printed as JSON on stdout. numpy's generator is seeded.
"""
import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageEnhance


def on_white(path):
    im = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, im).convert("RGB")


def view(im, rng):
    w, h = im.size
    side = int(min(w, h) * rng.uniform(0.55, 1.0))
    left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    v = im.crop((left, top, left + side, top + side))
    if rng.random() < 0.5:
        v = v.transpose(Image.FLIP_LEFT_RIGHT)
    v = v.rotate(float(rng.uniform(-25, 25)), resample=Image.BILINEAR, fillcolor=(255, 255, 255))
    v = ImageEnhance.Brightness(v).enhance(float(rng.uniform(0.7, 1.3)))
    v = ImageEnhance.Contrast(v).enhance(float(rng.uniform(0.7, 1.3)))
    return np.asarray(v.resize((224, 224), Image.BILINEAR), dtype=np.float32) / 127.5 - 1.0


def main():
    photos, model, views, seed, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    paths = sorted(pathlib.Path(photos).glob("*.png"))
    if not paths:
        sys.exit(f"no PNG photos in {photos}")
    rng = np.random.default_rng(seed)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    rows = []
    for path in paths:
        im = on_white(path)
        batch = np.stack([view(im, rng) for _ in range(views)])
        rows.append(session.run(["embedding"], {"image": batch})[0].astype("<f4"))
    x = np.concatenate(rows)
    x.tofile(out)
    print(json.dumps({"rows": int(x.shape[0]), "dim": int(x.shape[1])}))


if __name__ == "__main__":
    main()
