"""``python -m bench.river_step``: µs per test-then-train step (``predict_one`` then
``learn_one``) through the River wrapper on a 10-feature dict stream, beside River's
``StandardScaler | LogisticRegression`` on the same samples, in one process.

Each model sees 20,000 samples (after 500 that compile or warm it up); best of 3 passes.
"""

from __future__ import annotations

import time

import numpy as np
from river import linear_model, preprocessing

from tweenstream.river import MLPClassifier

N, WARM = 20_000, 500


def stream(n: int) -> list[tuple[dict[str, float], bool]]:
    """Ten float features; the label is the sign of a fixed linear mix of them."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 10))
    w = rng.normal(size=10)
    return [({f"f{j}": float(v) for j, v in enumerate(row)}, bool(row @ w > 0)) for row in X]


def per_sample(model, rows) -> float:
    """Best µs per test-then-train step over ``rows``."""
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        for x, y in rows:
            model.predict_one(x)
            model.learn_one(x, y)
        best = min(best, (time.perf_counter() - start) / len(rows) * 1e6)
    return best


def main() -> None:
    rows = stream(N + WARM)
    models = {
        "tweenstream MLPClassifier (defaults)": MLPClassifier(seed=0),
        "tweenstream MLPClassifier, backprop SGD, scaling off behind River's scaler":
            preprocessing.StandardScaler() | MLPClassifier(seed=0, mode="backprop",
                                                           optimizer="sgd", scaling="off"),
        "River StandardScaler | LogisticRegression":
            preprocessing.StandardScaler() | linear_model.LogisticRegression(),
    }
    print("| model | µs per sample (predict_one + learn_one) |")
    print("|---|---|")
    for name, model in models.items():
        for x, y in rows[:WARM]:
            model.predict_one(x)
            model.learn_one(x, y)
        print(f"| {name} | {per_sample(model, rows[WARM:]):.1f} |", flush=True)


if __name__ == "__main__":
    main()
