"""µs per sample of one representative network per layer kind: learn_many (backprop and tween)
and predict_one. Compilation is kept out: every model learns a few samples first."""

from __future__ import annotations

import numpy as np
import pytest

from tweenstream import Dense, Learner, Network
from tweenstream.models import (
    LSTM,
    RNN,
    AvgPool2D,
    Conv1D,
    Conv2D,
    Embedding,
    Flatten,
    LayerNorm,
    MaxPool2D,
    MultiHeadAttention,
    RepeatVector,
    Residual,
    RMSNorm,
    SwiGLU,
    TimeDense,
)

NETWORKS = {
    "conv2d + max_pool2d": Network((16, 16, 1), [Conv2D(8, 3, padding="same", activation="relu"),
                                                MaxPool2D(2), Flatten(), Dense(10)]),
    "avg_pool2d": Network((16, 16, 4), [AvgPool2D(2), Flatten(), Dense(10)]),
    "conv1d": Network((64, 4), [Conv1D(16, 5, activation="relu"), Flatten(), Dense(4)]),
    "rnn": Network((16, 8), [RNN(32), Dense(4)]),
    "lstm": Network((16, 8), [LSTM(32), Dense(4)]),
    "attention": Network((16, 32), [MultiHeadAttention(4), Flatten(), Dense(4)]),
    "layer_norm": Network((16, 32), [LayerNorm(), Flatten(), Dense(4)]),
    "rms_norm": Network((16, 32), [RMSNorm(), Flatten(), Dense(4)]),
    "swiglu": Network((16, 32), [SwiGLU(64), Flatten(), Dense(4)]),
    "embedding": Network(16, [Embedding(1000, 32), Flatten(), Dense(4)]),
    "residual": Network(64, [Dense(64, "tanh"), Residual([Dense(64, "tanh"), Dense(64)]),
                             Dense(4)]),
    "time_dense": Network((16, 32), [TimeDense(32, "tanh"), Flatten(), Dense(4)]),
    "repeat_vector + time_dense": Network(32, [Dense(16, "tanh"), RepeatVector(16),
                                               TimeDense(8, "tanh"), Flatten(), Dense(4)]),
}
SAMPLES = 2_000


def _setup(name: str, mode: str):
    net = NETWORKS[name]
    rng = np.random.default_rng(0)
    if name == "embedding":
        X = rng.integers(0, 1000, (SAMPLES, net.n_inputs)).astype(np.float32)
    else:
        X = rng.standard_normal((SAMPLES, net.n_inputs)).astype(np.float32)
    y = rng.integers(0, net.n_outputs, SAMPLES)
    model = Learner(net, mode=mode, seed=0)
    model.learn_many(X[:5], y[:5])
    model.predict_many(X[:2])
    return model, X, y


def _info(benchmark, name, op, mode, samples, model):
    benchmark.extra_info.update(table="kinds", kind=name, op=op, mode=mode, samples=samples,
                                params=model.network.param_count)


@pytest.mark.parametrize("mode", ["backprop", "tween"])
@pytest.mark.parametrize("name", NETWORKS)
def test_learn_many(benchmark, name, mode):
    model, X, y = _setup(name, mode)
    _info(benchmark, name, "learn_many", mode, SAMPLES, model)
    benchmark.pedantic(model.learn_many, args=(X, y), rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("name", NETWORKS)
def test_predict_one(benchmark, name):
    model, X, _ = _setup(name, "tween")
    _info(benchmark, name, "predict_one", "any", 1, model)
    benchmark(model.predict_one, X[0])
