#!/usr/bin/env python3
"""Reference PCA for the aggregator's tests: scikit-learn on raw float32 rows.

Usage: sklearn_pca.py ROWS.f32 N DIM K OUT.json
ROWS.f32 holds N x DIM little-endian float32 values, row-major. OUT.json gets
{"mean", "components" (K x DIM), "explained_variance", "explained_variance_ratio"}
from PCA(n_components=K, svd_solver="full") computed in float64.
"""
import json
import sys

import numpy as np
from sklearn.decomposition import PCA


def main():
    path, n, dim, k, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    x = np.fromfile(path, dtype="<f4").reshape(n, dim).astype(np.float64)
    pca = PCA(n_components=k, svd_solver="full").fit(x)
    with open(out, "w") as f:
        json.dump({
            "mean": pca.mean_.tolist(),
            "components": pca.components_.tolist(),
            "explained_variance": pca.explained_variance_.tolist(),
            "explained_variance_ratio": pca.explained_variance_ratio_.tolist(),
        }, f)


if __name__ == "__main__":
    main()
