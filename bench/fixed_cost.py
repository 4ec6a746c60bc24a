"""``python -m bench.fixed_cost``: µs per sample of ``learn_many`` for chains of 2-unit Dense
layers (1 to 9 layers), so that the arithmetic is negligible and what remains is the fixed
cost per sample and per layer (calls into the layer kernels, the head, the checks).

Backprop with SGD and tween, unscaled inputs, best of 40 calls of 2,000 samples each.
"""

from __future__ import annotations

import time

import numpy as np

from tweenstream import Dense, Learner, Network


def per_sample(layers: int, mode: str) -> float:
    """Best µs per sample for ``layers`` Dense(2) layers (the last one the output)."""
    net = Network(2, [*(Dense(2, "tanh") for _ in range(layers - 1)), Dense(2)])
    model = Learner(net, mode=mode, optimizer="sgd", seed=0, scaling="off")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2_000, 2)).astype(np.float32)
    y = rng.integers(0, 2, 2_000)
    model.learn_many(X[:10], y[:10])
    best = np.inf
    for _ in range(40):
        start = time.perf_counter()
        model.learn_many(X, y)
        best = min(best, time.perf_counter() - start)
    return best / 2_000 * 1e6


def main() -> None:
    print("| layers | backprop µs | tween µs |")
    print("|---|---|---|")
    for layers in (1, 2, 3, 5, 9):
        print(f"| {layers} | {per_sample(layers, 'backprop'):.2f} | "
              f"{per_sample(layers, 'tween'):.2f} |", flush=True)


if __name__ == "__main__":
    main()
