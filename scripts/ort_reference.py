#!/usr/bin/env python3
"""Golden reference for the Rust embedder: Pillow preprocessing + ONNX Runtime.

For each photo (default: every PNG/JPEG in data/tuxpaint/fruit, at least 10) this
writes to OUT_DIR:
  <stem>.png     the 224x224 RGB image after Pillow preprocessing
  golden.json    {"model_sha256", "filter", "entries": [{"source", "png", "embedding"}]}

Preprocessing formula (mobile-core/src/preprocess.rs implements the same):
  1. ImageOps.exif_transpose (EXIF orientation);
  2. alpha composited on white, integer rounding:
     rgb = (c * a + 255 * (255 - a) + 127) // 255   (uint32 arithmetic);
  3. centre crop to a square of side min(w, h), offsets floor((w - side) / 2),
     floor((h - side) / 2);
  4. resize to the manifest's width x height with Image.BILINEAR (Pillow's
     triangle convolution, whose support widens when downscaling);
  5. value = pixel * scale[c] + offset[c] in float32 (manifest normalisation),
     laid out per the manifest (NHWC or NCHW).
The embedding is ONNX Runtime's (CPU provider) on the PNG written in step 4, so the
Rust test can feed the exact same pixels to tract.

Usage: ort_reference.py OUT_DIR [--photos DIR] [--manifest models/<model>.json] [--limit N]
"""
import argparse
import hashlib
import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

ROOT = pathlib.Path(__file__).resolve().parent.parent


def preprocess(path, width, height):
    im = ImageOps.exif_transpose(Image.open(path))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint32)
        a = rgba[..., 3:4]
        rgb = (rgba[..., :3] * a + 255 * (255 - a) + 127) // 255
        im = Image.fromarray(rgb.astype(np.uint8), "RGB")
    else:
        im = im.convert("RGB")
    w, h = im.size
    # Largest centred crop with the output's aspect ratio (a square for 224x224).
    if w * height >= h * width:
        cw, ch = max(h * width // height, 1), h
    else:
        cw, ch = w, max(w * height // width, 1)
    left, top = (w - cw) // 2, (h - ch) // 2
    im = im.crop((left, top, left + cw, top + ch))
    return im.resize((width, height), Image.BILINEAR)


def to_tensor(im, spec):
    x = np.asarray(im, dtype=np.float32)
    if spec["channel_order"] == "BGR":
        x = x[..., ::-1]
    norm = spec["normalization"]
    x = x * np.asarray(norm["scale"], np.float32) + np.asarray(norm["offset"], np.float32)
    if spec["layout"] == "NCHW":
        x = x.transpose(2, 0, 1)
    return x[None].astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=pathlib.Path)
    ap.add_argument("--photos", type=pathlib.Path, default=ROOT / "data/tuxpaint/fruit")
    ap.add_argument("--manifest", type=pathlib.Path, default=ROOT / "models/mobilenetv2-1.0-224-embed.json")
    ap.add_argument("--limit", type=int, default=0, help="at most N photos (0 = all)")
    args = ap.parse_args()

    manifest = json.loads(args.manifest.read_text())
    model_path = args.manifest.parent / manifest["file"]
    model_bytes = model_path.read_bytes()
    sha = hashlib.sha256(model_bytes).hexdigest()
    if sha != manifest["sha256"]:
        sys.exit(f"model sha256 {sha} != manifest {manifest['sha256']}")
    spec = manifest["input"]

    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if args.limit:
        photos = photos[: args.limit]
    if len(photos) < 10:
        sys.exit(f"need at least 10 photos in {args.photos}, found {len(photos)}: run scripts/setup.sh")

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for p in photos:
        im = preprocess(p, spec["width"], spec["height"])
        png = args.out_dir / (p.stem + ".png")
        im.save(png)
        # Feed exactly what was saved.
        x = to_tensor(Image.open(png).convert("RGB"), spec)
        (emb,) = sess.run([manifest["output"]["name"]], {spec["name"]: x})
        entries.append({"source": str(p.resolve()), "png": png.name, "embedding": emb[0].astype(float).tolist()})
    golden = {"model_sha256": sha, "filter": "PIL.Image.BILINEAR", "onnxruntime": ort.__version__, "entries": entries}
    (args.out_dir / "golden.json").write_text(json.dumps(golden))
    print(f"wrote {len(entries)} golden embeddings to {args.out_dir}")


if __name__ == "__main__":
    main()
