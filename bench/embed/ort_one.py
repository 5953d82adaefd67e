#!/usr/bin/env python3
"""Anchor for peak RSS: embed one photo with Pillow + ONNX Runtime (1 thread)."""
import json
import pathlib
import sys

import onnxruntime as ort

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts"))
from ort_reference import preprocess, to_tensor  # noqa: E402

manifest_path = pathlib.Path(sys.argv[1])
m = json.loads(manifest_path.read_text())
so = ort.SessionOptions()
so.intra_op_num_threads = 1
so.inter_op_num_threads = 1
sess = ort.InferenceSession(str(manifest_path.parent / m["file"]), so, providers=["CPUExecutionProvider"])
x = to_tensor(preprocess(sys.argv[2], m["input"]["width"], m["input"]["height"]), m["input"])
(emb,) = sess.run([m["output"]["name"]], {m["input"]["name"]: x})
print(json.dumps({"dim": int(emb.shape[1])}))
