"""µs per ``learn_many`` sample of backprop with each optimiser on shape A (8-32-32-4).

Not a test and no asserts: ``python -m bench.optimizers [--runs 7] [--samples 50000]
[--optimizers sgd,adam,adagrad]``. Every
learner first learns 2,000 samples, which keeps compilation (or the cache load) out of the
timing; then the optimisers take turns, run after run, so that drift of a noisy host spreads
over all of them, and the median of the runs is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from tweenstream import Dense, Learner, Network

OPTIMIZERS = ("sgd", "adam", "adagrad")


def shape_a() -> Network:
    """The benchmarks' shape A: 8-32-32-4, tanh hidden layers."""
    return Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)])


def quadrant(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The quadrant of (x0, x1), 4 classes, as in the tests."""
    X = np.random.default_rng(seed).uniform(-1, 1, (n, 8)).astype(np.float32)
    return X, (2 * (X[:, 0] > 0) + (X[:, 1] > 0)).astype(np.int64)


def measure(runs: int, samples: int, optimizers: tuple[str, ...] = OPTIMIZERS
            ) -> dict[str, list[float]]:
    """µs per sample of every run, per optimiser."""
    X, y = quadrant(samples, seed=1)
    # "sgd" passes no optimizer argument, so a tweenstream from before the setting runs too
    models = {name: Learner(shape_a(), mode="backprop", seed=0,
                            **({} if name == "sgd" else {"optimizer": name}))
              for name in optimizers}
    for model in models.values():
        model.learn_many(*quadrant(2_000, seed=0))
    times: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(runs):
        for name, model in models.items():
            started = time.perf_counter()
            model.learn_many(X, y)
            times[name].append((time.perf_counter() - started) / samples * 1e6)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    args = parser.parse_args()
    times = measure(args.runs, args.samples, tuple(args.optimizers.split(",")))
    print(f"shape A, backprop learn_many, {args.samples:,} samples, {args.runs} runs")
    print(f"{'optimizer':<10} {'median µs':>10} {'min':>7} {'max':>7}")
    for name, t in times.items():
        print(f"{name:<10} {statistics.median(t):>10.3f} {min(t):>7.3f} {max(t):>7.3f}")


if __name__ == "__main__":
    main()
