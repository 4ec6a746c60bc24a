"""Per-layer gradient RMS in ``state()`` (backprop) and the health warnings built on it."""

from __future__ import annotations

import numpy as np

from tweenstream import Dense, Learner, Network
from tweenstream.runtime import layout as lay
from tweenstream.runtime.learner import gradient_health
from tweenstream.runtime.refine import GradientShare


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64)


def test_adam_grad_rms_is_the_last_gradients_rms_with_beta2_zero():
    """With beta2 = 0 Adam's second moment is the last gradient squared: the reported RMS
    must equal that gradient's, computed apart (the minibatch kernel on one row)."""
    net = Network(6, [Dense(8, "tanh"), Dense(8, "tanh"), Dense(2)])
    model = Learner(net, mode="backprop", optimizer="adam", beta2=0.0, scaling="off", seed=1)
    X, y = _data(50)
    model.learn_many(X[:49], y[:49])
    before = model.arena.params.copy()
    model.learn_one(X[49], int(y[49]))
    share = GradientShare(net, X[49:], y[49:], np.zeros((1, 2), np.float32))
    grad = share.accumulate(before, np.array([0])).astype(np.float64)
    layers = model.state()["layers"]
    for row, layer in zip(model._plan.table, layers, strict=True):
        p0, k = int(row[lay.C_P]), int(row[lay.C_NP])
        want = float(np.sqrt(np.mean(grad[p0:p0 + k] ** 2)))
        assert np.isclose(layer["grad_rms"], want, rtol=1e-4), (layer, want)
        assert layer["gradient"] == "ok"


def test_rms_is_none_outside_backprop_and_a_silent_layer_is_reported():
    X, y = _data(200)
    tween = Learner(Network(6, [Dense(8, "tanh"), Dense(2)]), mode="tween")
    tween.learn_many(X, y)
    assert all(layer["grad_rms"] is None for layer in tween.state()["layers"])
    assert tween.state()["gradient_warnings"] == []
    for optimizer in ("adam", "sgd", "adagrad"):
        model = Learner(Network(6, [Dense(8, "tanh"), Dense(8, "tanh"), Dense(2)]),
                        mode="backprop", optimizer=optimizer)
        model.learn_many(X, y)
        rms = [layer["grad_rms"] for layer in model.state()["layers"]]
        assert all(r is not None and r > 0 for r in rms), (optimizer, rms)
        row = model._plan.table[0]  # the first layer's recent gradients fall silent
        p0, k = int(row[lay.C_P]), int(row[lay.C_NP])
        model.arena.pbuf[lay.P_SQ, p0:p0 + k] = 0.0
        model.arena.pbuf[lay.P_VEL, p0:p0 + k] = 0.0
        st = model.state()
        assert st["gradient_warnings"] == [{"layer": 0, "kind": "dense",
                                            "gradient": "vanishing"}], optimizer


def test_health_is_relative_to_the_other_layers():
    assert gradient_health([1.0, 1e-5, 1e5]) == ["ok", "vanishing", "exploding"]
    assert gradient_health([1e-12, 2e-12]) == ["ok", "ok"]  # a small loss scale is not a fault
    assert gradient_health([None, None]) == ["ok", "ok"]
