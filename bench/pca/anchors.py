"""scikit-learn anchors on the exported .npy, and accuracy of our artifact.

usage: anchors.py DATA.npy ARTIFACT.json REPEATS
Prints one JSON object: timings (best of REPEATS, seconds) and accuracy figures.
"""
import json, sys, time
import numpy as np
from sklearn.decomposition import PCA, IncrementalPCA
from threadpoolctl import threadpool_info

def best(fn, n):
    times, out = [], None
    for _ in range(n):
        t = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t)
    return min(times), out

def max_angle_deg(a, b):  # largest principal angle between row spaces of a and b
    s = np.linalg.svd(np.linalg.qr(a.T)[0].T @ np.linalg.qr(b.T)[0], compute_uv=False)
    return float(np.degrees(np.arccos(np.clip(s.min(), -1, 1))))

npy, artifact, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
load_s, x = best(lambda: np.load(npy), 1)
ours = json.load(open(artifact))
k = ours["k"]
ours_c = np.array(ours["components"]).reshape(k, -1)
ours_ev = np.array(ours["explained_variance"])

r = {"rows": x.shape[0], "dim": x.shape[1], "load_npy_s": load_s,
     "blas": [(i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()]}
r["sklearn_randomized_s"], rnd = best(lambda: PCA(n_components=k, svd_solver="randomized", random_state=0).fit(x), reps)
bs = 10_000
r["sklearn_incremental_s"], inc = best(lambda: IncrementalPCA(n_components=k, batch_size=bs).fit(x), 1)  # slow: one run
r["incremental_batch_size"] = bs

# Ground truth: exact f64 covariance, eigendecomposed.
mu = x.mean(axis=0, dtype=np.float64)
cov = sum((c := x[i:i + bs] - mu).T @ c for i in range(0, len(x), bs)) / (len(x) - 1)
w, v = np.linalg.eigh(cov)
w, v = w[::-1], v[:, ::-1].T

def acc(name, comps, ev):
    r[f"{name}_ev10_max_rel_diff_vs_exact"] = float(np.max(np.abs(ev[:10] - w[:10]) / w[:10]))
    r[f"{name}_angle10_deg_vs_exact"] = max_angle_deg(comps[:10], v[:10])
    r[f"{name}_angle50_deg_vs_exact"] = max_angle_deg(comps[:k], v[:k])

acc("ours", ours_c, ours_ev)
acc("sklearn_randomized", rnd.components_, rnd.explained_variance_)
acc("sklearn_incremental", inc.components_, inc.explained_variance_)
r["ours_vs_sklearn_randomized_ev10_max_rel_diff"] = float(np.max(np.abs(ours_ev[:10] - rnd.explained_variance_[:10]) / rnd.explained_variance_[:10]))
r["ours_vs_sklearn_randomized_angle10_deg"] = max_angle_deg(ours_c[:10], rnd.components_[:10])
r["ours_mean_max_abs_diff"] = float(np.max(np.abs(np.array(ours["mean"]) - mu)))
r["ours_total_variance_rel_diff"] = float(abs(ours["total_variance"] - np.trace(cov)) / np.trace(cov))
print(json.dumps(r, indent=1))
