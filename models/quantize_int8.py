#!/usr/bin/env python3
"""Builds the int8 MobileNetV2 embedding model from the f32 one, reproducibly.

ONNX Runtime's static quantisation in QDQ form (QuantizeLinear / DequantizeLinear pairs
around the float operators, which tract loads): int8 weights per output channel
(symmetric), uint8 activations per tensor, ranges calibrated (99.999th percentile) on
training views only -- a deterministic few hundred of a `fruits dataset build` Training/
folder, never a test photo. The graph is not optimised first (ORT's optimiser would fuse
Conv+Clip into its own contrib operators, which other runtimes cannot load).

Two convolutions stay in f32: the first block's depthwise (32 x 3 x 3) and its projection
(16 x 32). Measured one layer at a time (weights alone rounded to int8 per channel, over
the 26 real photos), each of them drops the embedding's mean cosine to the f32 one to 0.91
and 0.96, while every other layer keeps it above 0.997: their folded batch-norm scales
spread the weights of a channel over too wide a range for 8 bits. Together they are 0.2%
of the weights and under 2% of the multiply-adds. With them quantised the model's
embeddings are at cosine 0.89 (mean) to the f32 ones; without, 0.985.

Writes, next to the f32 model:
  mobilenetv2-1.0-224-embed-int8.onnx    the model (committed: another version of onnx or
                                         onnxruntime would change its bytes and sha256)
  mobilenetv2-1.0-224-embed-int8.json    its manifest: the f32 input contract, its sha256,
                                         "precision": "int8"

usage: models/quantize_int8.py TRAINING_VIEWS_DIR [--count 300]
  e.g. fruits dataset build --out /tmp/calib && models/quantize_int8.py /tmp/calib/Training
Needs: pip install onnx onnxruntime numpy Pillow (the versions used are printed).
"""
import argparse
import hashlib
import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))
from ort_reference import preprocess, to_tensor  # noqa: E402  the engine's preprocessing, in Pillow

F32_MANIFEST = HERE / "mobilenetv2-1.0-224-embed.json"
INT8_NAME = "mobilenetv2-1.0-224-embed-int8"
# The convolutions kept in f32 (their Keras layer names; see the docstring for why).
KEEP_F32 = ("expanded_conv_depthwise", "expanded_conv_project")
PERCENTILE = 99.999


class Views(CalibrationDataReader):
    """The calibration tensors, one batch-1 input at a time."""

    def __init__(self, paths, spec):
        self.tensors = iter([{spec["name"]: to_tensor(preprocess(p, spec["width"], spec["height"]), spec)} for p in paths])

    def get_next(self):
        return next(self.tensors, None)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("views", type=pathlib.Path, help="a Training/ folder of views (Class/<view>.jpg)")
    ap.add_argument("--count", type=int, default=300, help="calibration views, spread evenly over the sorted list")
    args = ap.parse_args()

    manifest = json.loads(F32_MANIFEST.read_text())
    spec = manifest["input"]
    f32 = HERE / manifest["file"]
    if hashlib.sha256(f32.read_bytes()).hexdigest() != manifest["sha256"]:
        sys.exit(f"{f32} does not match its manifest's sha256")
    paths = sorted(p for p in args.views.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if "Test" in {part for p in paths for part in p.parts}:
        sys.exit("calibrate on training views only (a Training/ folder), never on test photos")
    if len(paths) < args.count:
        sys.exit(f"{len(paths)} views under {args.views}, fewer than --count {args.count}")
    step = len(paths) / args.count
    chosen = [paths[int(i * step)] for i in range(args.count)]

    out = HERE / f"{INT8_NAME}.onnx"
    graph = onnx.load(str(f32)).graph
    keep_f32 = [n.name for n in graph.node if n.op_type == "Conv" and n.name.split("/")[-2] in KEEP_F32]
    if len(keep_f32) != len(KEEP_F32):
        sys.exit(f"expected the convolutions {KEEP_F32} in {f32}, found {keep_f32}")
    quantize_static(
        str(f32),
        str(out),
        Views(chosen, spec),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.Percentile,
        extra_options={"CalibPercentile": PERCENTILE},
        nodes_to_exclude=keep_f32,
    )
    model = onnx.load(str(out))
    ops = sorted({n.op_type for n in model.graph.node})
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    int8 = dict(manifest, name=INT8_NAME, file=out.name, sha256=digest, precision="int8")
    int8["quantization"] = {
        "from": {"file": manifest["file"], "sha256": manifest["sha256"]},
        "format": "QDQ, int8 weights per output channel (symmetric), uint8 activations per tensor",
        "kept_f32": ", ".join(KEEP_F32),
        "calibration": f"{PERCENTILE}th percentile over {args.count} training views of `fruits dataset build`",
        "tools": {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__},
    }
    (HERE / f"{INT8_NAME}.json").write_text(json.dumps(int8, indent=2) + "\n")
    print(json.dumps({"model": str(out), "bytes": out.stat().st_size, "sha256": digest, "operators": ops,
                      "calibration_views": len(chosen)}, indent=2))


if __name__ == "__main__":
    main()
