"""Residual: expansion into rows, the skip path's gradient (oracle and finite differences),
serialisation, errors, and a learning test."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import central_difference
from oracle import residual as ref_residual

from tweenstream import Dense, Learner, Network
from tweenstream.models import Flatten, LayerNorm, Residual


def test_rows_and_round_trip():
    net = Network(4, [Dense(5, "tanh"), Residual([Dense(5, "tanh"), Residual([Dense(5)])]),
                      Dense(2)])
    names = [type(s).__name__ for s, _, _ in net.rows]
    assert names == ["Dense", "ResidualBegin", "Dense", "ResidualBegin", "Dense", "ResidualEnd",
                     "ResidualEnd", "Dense"]
    assert Network.from_dict(net.to_dict()) == net
    assert len(net.layers) == 3 and net.param_count == 25 + 30 + 30 + 12


def test_backprop_step_matches_the_oracle_gradient():
    net = Network(3, [Residual([Dense(4, "tanh"), Dense(3)])], task="regression")
    model = Learner(net, mode="backprop", seed=0, scaling="off", target_scaling="off",
                    optimizer="sgd",
                    learning_rate=1.0, momentum=0.0,
                    max_param_jump=1e9, soft_detection=False)
    p1, p2 = model.arena.layer_params(1), model.arena.layer_params(2)
    W1, b1, W2, b2 = (a.astype(np.float64) for a in (p1["W"], p1["b"], p2["W"], p2["b"]))
    x = np.array([0.3, -0.7, 0.5])
    target = np.array([0.1, 0.2, -0.4])
    y, h = ref_residual.forward(x, W1, b1, W2, b2)
    _, dW1, db1, dW2, db2 = ref_residual.backward(x, h, W1, W2, target - y)  # -dloss/dy
    before = model.arena.params.copy()
    model.learn_one(x.astype(np.float32), target.astype(np.float32))
    step = model.arena.params - before
    np.testing.assert_allclose(step, np.concatenate([dW1.ravel(), db1, dW2.ravel(), db2]),
                               atol=1e-6)


def test_oracle_gradient_against_finite_differences():
    rng = np.random.default_rng(0)
    x, W1, b1, W2, b2 = rng.standard_normal(3), rng.standard_normal((4, 3)), \
        rng.standard_normal(4), rng.standard_normal((3, 4)), rng.standard_normal(3)
    g = rng.standard_normal(3)

    def loss():
        return float(g @ ref_residual.forward(x, W1, b1, W2, b2)[0])

    _, h = ref_residual.forward(x, W1, b1, W2, b2)
    analytic = ref_residual.backward(x, h, W1, W2, g)
    for target, grad in zip((x, W1, b1, W2, b2), analytic, strict=True):
        numeric = central_difference(lambda: loss(), target)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("layers, message", [
    (lambda: [Residual([Dense(3)]), Dense(2)], r"layer 0 \(residual\): the inner layers turn "
                                                r"\(4,\) into \(3,\); they must keep the shape"),
    (lambda: [Residual([])], r"Residual takes a non-empty list of layer specs"),
    (lambda: [Residual([Dense(4, "softmax")]), Dense(2)], r"layer 0.0: softmax is allowed only "
                                                           r"on the output layer"),
])
def test_residual_errors(layers, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Network(4, layers())


@pytest.mark.parametrize("mode", ["backprop", "tween", "hybrid"])
def test_residual_stack_learns(mode):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (20_000, 8)).astype(np.float32)
    y = (2 * (X[:, 0] > 0) + (X[:, 1] > 0)).astype(np.int64)
    net = Network(8, [Dense(16, "tanh"), Residual([Dense(16, "tanh"), Dense(16)]),
                      Residual([LayerNorm(), Dense(16, "tanh")]), Dense(4)])
    model = Learner(net, mode=mode, seed=0, switch_after=5_000)
    model.learn_many(X[:18_000], y[:18_000])
    accuracy = float((model.predict_many(X[18_000:]) == y[18_000:]).mean())
    assert accuracy > 0.85, accuracy  # majority class: about 0.25
    assert model.state()["explosions"] == 0


def test_residual_around_a_sequence_layer_exports():
    from tweenstream.export.builder import build_model, session
    from tweenstream.models import LSTM

    net = Network((3, 4), [Residual([LSTM(4, return_sequences=True)]), Flatten(), Dense(2)])
    model = Learner(net, seed=0)
    X = np.random.default_rng(1).standard_normal((5, 12)).astype(np.float32)
    out = session(build_model(model)).run(None, {"input": X})[0]
    assert np.abs(out - model.predict_proba_many(X)).max() <= 1e-5
