"""``tweenstream tune`` on two recorded streams this repo generates, with 1 and 2 trials at once.

    python -m bench.tune_streams [--samples 16] [--json build/tune.json]

Streams (20,000 samples each, seed 0): ``quadrants`` (8 inputs, 4 classes from the signs of
two inputs, 10% label noise, the rule rotating once half-way) and ``waves`` (8 inputs, one
regression target, a sum of sines of three inputs plus noise). For each stream and each
number of workers: the best configuration of the default search space, its prequential score,
the library defaults' score on the same replay, and the wall time (a local Ray instance,
started and warmed by a small untimed run first).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from tweenstream.models import Dense, Network
from tweenstream.tuning import default_space, tune_stream


def streams(n: int = 20_000, seed: int = 0) -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
    a, b = X[:, 0], X[:, 1]
    first = 2 * (a > 0) + (b > 0)
    second = 2 * (b > 0) + (a < 0)  # the rule rotates half-way
    y = np.where(np.arange(n) < n // 2, first, second)
    noisy = rng.random(n) < 0.1
    y = np.where(noisy, rng.integers(0, 4, n), y).astype(np.int64)
    Xr = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
    t = (np.sin(3 * Xr[:, 0]) + np.sin(2 * Xr[:, 1]) * Xr[:, 2]
         + 0.05 * rng.standard_normal(n)).astype(np.float32)
    return {"quadrants": (Network(8, [Dense(32, "relu"), Dense(32, "relu"), Dense(4)]), X, y),
            "waves": (Network(8, [Dense(32, "relu"), Dense(32, "relu"), Dense(1)],
                              task="regression"), Xr, t.reshape(-1, 1))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    out = []
    data = streams()
    net, X, y = data["quadrants"]  # untimed: the Ray instance and its worker processes start
    tune_stream(net, X[:500], y[:500], default_space(net.task), samples=4, workers=2)
    for name, (net, X, y) in data.items():
        for workers in (1, 2):
            r = tune_stream(net, X, y, default_space(net.task), samples=args.samples,
                            workers=workers, seed=0)
            best = r["ranked"][0]
            row = {"stream": name, "workers": workers, "best": best["score"],
                   "defaults": r["defaults"], "seconds": r["seconds"],
                   "config": best["config"], "trials": len(r["ranked"]),
                   "finished": sum(x["chunks"] == 10 for x in r["ranked"])}
            emit(out, row)
    save(out, args.json)
    return 0


def emit(rows: list[dict], row: dict) -> None:
    """Keep one result row and print it as a JSON line at once (long runs show progress)."""
    rows.append(row)
    print(json.dumps(row), flush=True)


def save(rows: list[dict], path: str | None) -> None:
    """Write every result row to ``path`` as one JSON list (nothing without a path)."""
    if path:
        with open(path, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
