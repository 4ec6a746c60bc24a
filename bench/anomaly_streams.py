"""Anomaly detection on synthetic sensor streams: the online autoencoder beside River's
HalfSpaceTrees, in the same run.

    python -m bench.anomaly_streams [--samples 20000] [--seeds 3] [--json build/anomaly.json]

Each stream has 8 correlated sensors (3 latent factors plus noise) and one kind of injected
anomaly, starting at known samples after a clean warm-up of 2,000:

- ``spikes``: single samples with one sensor +5 standard deviations (1% of samples);
- ``level_shift``: one sensor offset by +3 for 200 samples, 10 times;
- ``frozen``: one sensor stuck at its last value for 200 samples, 10 times;
- ``drift``: one sensor drifting away linearly over 500 samples (to +4), 6 times.

Each model scores every sample before learning it (test, then train). Reported per stream:
the ROC AUC of the scores over the samples after the warm-up; the delay to detection, as the
median number of samples from an anomaly's start to the first score above the 0.99 quantile of
the model's scores on clean samples (windows never detected count as their length); and the
microseconds per sample (score and learn). AUC is exact (scikit-learn's ``roc_auc_score``).
``MLPAnomalyDetector`` runs at its defaults; HalfSpaceTrees behind River's ``MinMaxScaler``,
its documented pipeline.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

KINDS = ("spikes", "level_shift", "frozen", "drift")
WARMUP = 2_000


def stream(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """(X, is_anomaly, [(start, stop) of each anomaly])."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(100 + seed).normal(size=(3, 8))
    X = rng.normal(size=(n, 3)) @ mix + 0.3 * rng.normal(size=(n, 8))
    X /= X.std(axis=0)
    flags = np.zeros(n, bool)
    spans: list[tuple[int, int]] = []
    if kind == "spikes":
        for i in rng.choice(np.arange(WARMUP, n), n // 100, replace=False):
            X[i, rng.integers(8)] += 5.0
            spans.append((int(i), int(i) + 1))
    else:
        length, count = {"level_shift": (200, 10), "frozen": (200, 10), "drift": (500, 6)}[kind]
        starts = np.linspace(WARMUP + 500, n - length - 100, count).astype(int)
        for s in starts:
            j = int(rng.integers(8))
            if kind == "level_shift":
                X[s:s + length, j] += 3.0
            elif kind == "frozen":
                X[s:s + length, j] = X[s - 1, j]
            else:
                X[s:s + length, j] += np.linspace(0.0, 4.0, length)
            spans.append((int(s), int(s + length)))
    for a, b in spans:
        flags[a:b] = True
    return X.astype(np.float32), flags, spans


def run(model, X: np.ndarray) -> tuple[np.ndarray, float]:
    rows = [{f"s{j}": float(v) for j, v in enumerate(x)} for x in X]
    scores = np.empty(len(rows))
    start = time.perf_counter()
    for i, row in enumerate(rows):
        scores[i] = model.score_one(row)
        model.learn_one(row)
    return scores, (time.perf_counter() - start) / len(rows) * 1e6


def delay(scores: np.ndarray, flags: np.ndarray, spans: list[tuple[int, int]]) -> float:
    clean = scores[WARMUP:][~flags[WARMUP:]]
    threshold = np.quantile(clean, 0.99)
    waits = []
    for a, b in spans:
        hit = np.nonzero(scores[a:b] > threshold)[0]
        waits.append(int(hit[0]) if hit.size else b - a)
    return float(np.median(waits))


def main(argv: list[str] | None = None) -> int:
    from river import anomaly, preprocessing
    from sklearn.metrics import roc_auc_score

    from bench.tune_streams import emit, save
    from tweenstream.river import MLPAnomalyDetector

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--samples", type=int, default=20_000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    out = []
    for kind in KINDS:
        for seed in range(args.seeds):
            X, flags, spans = stream(kind, args.samples, seed)
            models = {"tweenstream": MLPAnomalyDetector(seed=seed),
                      "HalfSpaceTrees": preprocessing.MinMaxScaler()
                      | anomaly.HalfSpaceTrees(seed=seed)}
            for name, model in models.items():
                scores, us = run(model, X)
                auc = float(roc_auc_score(flags[WARMUP:], scores[WARMUP:]))
                row = {"stream": kind, "seed": seed, "model": name, "auc": auc,
                       "delay": delay(scores, flags, spans), "us_per_sample": us}
                emit(out, row)
    save(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
