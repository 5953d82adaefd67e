"""Top-1 accuracy of several heads on the Test/ split of the tuxpaint-derived set,
split into held-out views of training photos and views of photos held out whole.

usage: compare_heads.py TRAIN.jsonl TEST.jsonl   (lines of `fruits embed`)
Every head works on the PCA keeping 95% of the training variance, like the
aggregator's. Prints one line per head and, for the best logistic regression, the
top-3 classes given to each photo held out whole.
"""
import json, os, re, sys
import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression


def load(path):
    rows, classes, photos = [], [], []
    for line in open(path):
        j = json.loads(line)
        rows.append(j["embedding"])
        classes.append(j["path"].split("/")[-2])
        photos.append(re.sub(r"_\d+\.jpg$", "", os.path.basename(j["path"])))
    return np.array(rows, dtype=np.float64), np.array(classes), np.array(photos)


def pca95(x):
    k = int(np.searchsorted(np.cumsum(PCA().fit(x).explained_variance_ratio_), 0.95) + 1)
    return PCA(k).fit(x)


def logistic(c, normalise=False, balanced=None):
    def fit_predict(x, y, t):
        if normalise:
            x, t = (a / np.linalg.norm(a, axis=1, keepdims=True) for a in (x, t))
        p = pca95(x)
        return LogisticRegression(C=c, max_iter=5000, class_weight=balanced).fit(p.transform(x), y).predict(p.transform(t))
    return fit_predict


def nearest_mean(cosine):
    def fit_predict(x, y, t):
        p = pca95(x)
        z, zt = p.transform(x), p.transform(t)
        if cosine:
            z, zt = (a / np.linalg.norm(a, axis=1, keepdims=True) for a in (z, zt))
        classes = np.unique(y)
        means = np.array([z[y == c].mean(0) for c in classes])
        return classes[((zt[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)]
    return fit_predict


xtr, ytr, ptr = load(sys.argv[1])
xte, yte, pte = load(sys.argv[2])
seen = np.isin(pte, np.unique(ptr))
whole = sorted(set(pte[~seen]))
print(f"{len(ytr)} training views; test: {seen.sum()} views of training photos, "
      f"{(~seen).sum()} views of photos held out whole ({', '.join(whole)})")
heads = {f"logistic C={c}": logistic(c) for c in (0.001, 0.01, 0.1, 1, 10)}
heads |= {f"logistic C={c}, L2-normalised": logistic(c, normalise=True) for c in (0.1, 1, 10)}
heads |= {f"logistic C={c}, class-balanced": logistic(c, balanced="balanced") for c in (0.01, 1)}
heads |= {"nearest class mean": nearest_mean(False), "nearest class mean, cosine": nearest_mean(True)}
for name, fit_predict in heads.items():
    ok = fit_predict(xtr, ytr, xte) == yte
    per_photo = ", ".join(f"{p} {ok[pte == p].sum()}/{(pte == p).sum()}" for p in whole)
    print(f"{name:34s} training photos {ok[seen].mean():6.1%}  held-out photos {ok[~seen].mean():6.1%}"
          f"  all {ok.mean():6.1%}  ({per_photo})")
p = pca95(xtr)
m = LogisticRegression(C=1, max_iter=5000).fit(p.transform(xtr), ytr)
proba = m.predict_proba(p.transform(xte))
for photo in whole:
    top = np.argsort(-proba[pte == photo].mean(0))[:3]
    print(f"{photo}: mean probability " + ", ".join(f"{m.classes_[i]} {proba[pte == photo, i].mean():.2f}" for i in top))
