#!/usr/bin/env python3
"""Writes scikit-learn's classification metrics for seeded label/prediction sets to a JSON fixture.

The Swift tests (Tests/EmoModelTests/SklearnParityTests.swift) read the fixture and compare every
number with EmoModel's ClassificationMetrics to 1e-12. CI does not run this script: the fixture is
committed. Regenerate with:

    python3 -m venv .venv && .venv/bin/pip install scikit-learn numpy
    .venv/bin/python scripts/sklearn_metrics.py [Tests/EmoModelTests/Fixtures/sklearn-metrics.json]

Per-class figures and the weighted F1 use labels=range(K) with zero_division=0; macro F1 and macro precision
use scikit-learn's default labels (those true or predicted) and UAR is balanced_accuracy_score (the classes with
test samples): the conventions EmoModel follows.
"""
import json
import sys

import numpy as np
import sklearn
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support, precision_score)

RAVDESS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def noisy(rng, truth, k, correct):
    """Predictions equal to truth with probability `correct`, otherwise uniform."""
    pred = truth.copy()
    flip = rng.random(len(truth)) >= correct
    pred[flip] = rng.integers(0, k, flip.sum())
    return pred


def cases():
    rng = np.random.default_rng(20240611)
    k = 8
    # 1. Uniform random labels and predictions.
    t = rng.integers(0, k, 240)
    yield "uniform-random", RAVDESS, t, rng.integers(0, k, 240)
    # 2. A fair model (about 70% right), imbalanced classes (neutral has half as many samples as each other class, as in RAVDESS).
    t = rng.choice(k, 300, p=np.array([1, 2, 2, 2, 2, 2, 2, 2]) / 15)
    yield "fair-model-imbalanced", RAVDESS, t, noisy(rng, t, k, 0.7)
    # 3. "disgust" (6) has no true sample but is predicted; "happy" (2) is never predicted.
    t = rng.integers(0, k, 180)
    t[t == 6] = 7
    p = noisy(rng, t, k, 0.6)
    p[p == 2] = 3
    p[:5] = 6
    yield "no-support-and-never-predicted", RAVDESS, t, p
    # 4. Small hand-made case: class "c" neither true nor predicted, class "b" never predicted.
    yield "small-absent-class", ["a", "b", "c", "d"], np.array([0, 0, 1, 3, 3, 3, 1]), np.array([0, 3, 0, 3, 3, 0, 3])
    # 5. Perfect predictions.
    t = rng.integers(0, k, 64)
    yield "perfect", RAVDESS, t, t.copy()
    # 6. Every prediction wrong.
    t = rng.integers(0, k, 50)
    yield "all-wrong", RAVDESS, t, (t + 1 + rng.integers(0, k - 1, 50)) % k
    # 7. A single sample.
    yield "single-sample", RAVDESS, np.array([4]), np.array([4])


def cross_validation():
    """Four seeded folds: per-fold metrics, their mean and sample std (ddof=1), the summed confusion matrix."""
    rng = np.random.default_rng(7)
    k, ids = len(RAVDESS), list(range(len(RAVDESS)))
    folds, cms = [], []
    per_metric = {"accuracy": [], "weighted_f1": [], "macro_f1": [], "uar": []}
    for fold, correct in enumerate([0.55, 0.7, 0.62, 0.8], start=1):
        t = rng.integers(0, k, 90 + 10 * fold)
        p = noisy(rng, t, k, correct)
        values = {
            "accuracy": float(accuracy_score(t, p)),
            "weighted_f1": float(f1_score(t, p, labels=ids, average="weighted", zero_division=0)),
            "macro_f1": float(f1_score(t, p, average="macro", zero_division=0)),
            "uar": float(balanced_accuracy_score(t, p)),
        }
        for key, v in values.items():
            per_metric[key].append(v)
        cm = confusion_matrix(t, p, labels=ids)
        cms.append(cm)
        folds.append({"fold": fold, "truth": [int(x) for x in t], "predicted": [int(x) for x in p], **values})
    summed = sum(cms)
    st, sp = np.concatenate([np.array(f["truth"]) for f in folds]), np.concatenate([np.array(f["predicted"]) for f in folds])
    return {
        "labels": RAVDESS,
        "folds": folds,
        "mean": {key: float(np.mean(v)) for key, v in per_metric.items()},
        "std": {key: float(np.std(v, ddof=1)) for key, v in per_metric.items()},
        "summed_confusion_matrix": summed.tolist(),
        "pooled": {
            "accuracy": float(accuracy_score(st, sp)),
            "weighted_f1": float(f1_score(st, sp, labels=ids, average="weighted", zero_division=0)),
            "macro_f1": float(f1_score(st, sp, average="macro", zero_division=0)),
            "uar": float(balanced_accuracy_score(st, sp)),
        },
    }


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "Tests/EmoModelTests/Fixtures/sklearn-metrics.json"
    out = []
    for name, labels, t, p in cases():
        ids = list(range(len(labels)))
        prec, rec, f1, sup = precision_recall_fscore_support(t, p, labels=ids, zero_division=0)
        out.append({
            "name": name,
            "labels": labels,
            "truth": [int(x) for x in t],
            "predicted": [int(x) for x in p],
            "accuracy": float(accuracy_score(t, p)),
            "weighted_f1": float(f1_score(t, p, labels=ids, average="weighted", zero_division=0)),
            "macro_f1": float(f1_score(t, p, average="macro", zero_division=0)),
            "uar": float(balanced_accuracy_score(t, p)),
            "macro_precision": float(precision_score(t, p, average="macro", zero_division=0)),
            "precision": [float(x) for x in prec],
            "recall": [float(x) for x in rec],
            "f1": [float(x) for x in f1],
            "support": [int(x) for x in sup],
            "confusion_matrix": confusion_matrix(t, p, labels=ids).tolist(),
            "confusion_matrix_normalized": confusion_matrix(t, p, labels=ids, normalize="true").tolist(),
        })
    doc = {"generator": "scripts/sklearn_metrics.py", "sklearn_version": sklearn.__version__,
           "numpy_version": np.__version__, "cases": out, "cross_validation": cross_validation()}
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {len(out)} cases to {out_path}")


if __name__ == "__main__":
    main()
