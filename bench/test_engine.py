"""Speed of the engine: µs per sample for learn_many, learn_one and predict_one.

Shapes are BENCHMARKS.md's: A = 8-32-32-4, B = 64-128-128-10, C = 784-256-128-10, tanh hidden
layers and a softmax cross-entropy output. Compilation is kept out of the timings: every model
learns a few samples before it is timed. ``extra_info["samples"]`` is the number of samples a
timed call processes; ``bench/report.py`` divides by it.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tweenstream import Dense, Learner, Network

SHAPES = {"A": (8, (32, 32), 4), "B": (64, (128, 128), 10), "C": (784, (256, 128), 10)}
MODES = ("backprop", "tween", "tween-heuristic")
SAMPLES = {"A": 20_000, "B": 4_000, "C": 500}


def _setup(shape: str, mode: str, n: int) -> tuple[Learner, np.ndarray, np.ndarray]:
    n_in, hidden, k = SHAPES[shape]
    net = Network(n_in, [*(Dense(h, "tanh") for h in hidden), Dense(k)])
    model = Learner(net, mode=mode, seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, n_in)).astype(np.float32)
    y = rng.integers(0, k, n)
    model.learn_many(X[:10], y[:10])  # compile (or load) the kernels before timing
    model.predict_many(X[:2])
    return model, X, y


def _info(benchmark, shape: str, mode: str, op: str, samples: int, model: Learner) -> None:
    benchmark.extra_info.update(table="engine", shape=shape, mode=mode, op=op, samples=samples,
                                params=model.network.param_count)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_learn_many(benchmark, shape, mode):
    model, X, y = _setup(shape, mode, SAMPLES[shape])
    _info(benchmark, shape, mode, "learn_many", len(y), model)
    benchmark.pedantic(model.learn_many, args=(X, y), rounds=7, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_learn_one(benchmark, shape, mode):
    model, X, y = _setup(shape, mode, 1_000)
    stream = itertools.cycle(list(zip(X, y.tolist(), strict=True)))

    def learn_one() -> None:
        x, c = next(stream)
        model.learn_one(x, c)

    _info(benchmark, shape, mode, "learn_one", 1, model)
    benchmark(learn_one)


@pytest.mark.parametrize("shape", SHAPES)
def test_predict_one(benchmark, shape):
    model, X, _ = _setup(shape, "tween", 100)
    _info(benchmark, shape, "any", "predict_one", 1, model)
    benchmark(model.predict_one, X[0])
