"""``python -m bench.diagnostics_interval``: µs per sample of ``learn_many`` with the
diagnostics measured on every sample (``diagnostics_every=1``) and on every 10th, and the
explosions each records when the tween rate is raised 1000×.

Speed: shapes A and B, unscaled inputs, the two settings interleaved in one process (best of 80
calls each), so that the host's drift hits both alike. Safety: shape A learns 6,000 quadrant
samples, then 1,000 more at ``tween_rate`` × 1000 (as ``tests/test_explosions.py``).
"""

from __future__ import annotations

import time

import numpy as np

from tweenstream import Dense, Learner, Network

SHAPES = {"A": (8, (32, 32), 4, 2_000), "B": (64, (128, 128), 10, 400)}
CASES = (("backprop", "sgd"), ("backprop", "adam"), ("tween", "sgd"))


def _network(shape: str) -> Network:
    n_in, hidden, k, _ = SHAPES[shape]
    return Network(n_in, [*(Dense(h, "tanh") for h in hidden), Dense(k)])


def speed(shape: str, mode: str, optimizer: str) -> tuple[float, float]:
    """Best µs per sample with diagnostics_every 1 and 10."""
    n_in, _, k, n = SHAPES[shape]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, n_in)).astype(np.float32)
    y = rng.integers(0, k, n)
    models = [Learner(_network(shape), mode=mode, optimizer=optimizer, seed=0, scaling="off",
                      diagnostics_every=every) for every in (1, 10)]
    for m in models:
        m.learn_many(X[:10], y[:10])  # compile or load before timing
    best = [np.inf, np.inf]
    for _ in range(80):
        for i, m in enumerate(models):
            start = time.perf_counter()
            m.learn_many(X, y)
            best[i] = min(best[i], time.perf_counter() - start)
    return best[0] / n * 1e6, best[1] / n * 1e6


def _quadrants(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
    return X, (2 * (X[:, 0] > 0) + (X[:, 1] > 0)).astype(np.int64)


def safety(every: int) -> dict[str, float]:
    """Explosions, rollbacks and the adaptive rate after 1,000 samples at 1000× the tween rate."""
    model = Learner(_network("A"), mode="tween", seed=0, diagnostics_every=every)
    model.learn_many(*_quadrants(6_000, 1))
    model.configure(tween_rate=model.config.tween_rate * 1000)
    model.learn_many(*_quadrants(1_000, 2))
    st = model.state()
    return {"explosions": st["explosions"], "rollbacks": st["rollbacks"],
            "adaptive_rate": round(st["adaptive_rate"], 3)}


def main() -> None:
    print("| shape | mode | optimizer | every sample µs | every 10th µs | gain |")
    print("|---|---|---|---|---|---|")
    for shape in SHAPES:
        for mode, optimizer in CASES:
            one, ten = speed(shape, mode, optimizer)
            print(f"| {shape} | {mode} | {optimizer} | {one:.3f} | {ten:.3f} | "
                  f"{1 - ten / one:.1%} |", flush=True)
    for every in (1, 10):
        print(f"tween_rate x 1000, diagnostics_every={every}: {safety(every)}")


if __name__ == "__main__":
    main()
