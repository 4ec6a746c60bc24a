"""Regression losses: squared error, cosine, and their mix (``loss="cosine"``,
``cosine_weight``), checked against finite differences of a float64 NumPy twin."""

from __future__ import annotations

import numpy as np
import pytest

from tweenstream import Dense, Learner, Network
from tweenstream.runtime.refine import GradientShare


def _loss(params: np.ndarray, x: np.ndarray, y: np.ndarray, w: float) -> float:
    """The twin: Dense(5, tanh) then Dense(4) on 3 inputs; (1 - w) 0.5 |y - a|^2 +
    w (1 - cos(a, y)), in float64."""
    W1, b1 = params[:15].reshape(5, 3), params[15:20]
    W2, b2 = params[20:40].reshape(4, 5), params[40:44]
    a = W2 @ np.tanh(W1 @ x + b1) + b2
    cos = a @ y / (np.linalg.norm(a) * np.linalg.norm(y))
    return (1 - w) * 0.5 * float(((y - a) ** 2).sum()) + w * (1.0 - cos)


@pytest.mark.parametrize("loss, weight", [("squared", 0.9), ("cosine", 0.5), ("cosine", 0.9),
                                          ("cosine", 1.0)])
def test_the_kernel_gradient_matches_finite_differences(loss, weight):
    rng = np.random.default_rng(0)
    net = Network(3, [Dense(5, "tanh"), Dense(4)], task="regression")
    params = rng.normal(0, 0.5, net.param_count)
    x, y = rng.normal(size=3), rng.normal(size=4)
    share = GradientShare(net, x[None].astype(np.float32), np.zeros(1, np.int64),
                          y[None].astype(np.float32), loss=(loss, weight))
    descent = share.accumulate(params.astype(np.float32), np.array([0])).astype(np.float64)
    w = weight if loss == "cosine" else 0.0
    numeric = np.zeros_like(params)
    for i in range(len(params)):
        step = np.zeros_like(params)
        step[i] = 1e-6
        numeric[i] = (_loss(params + step, x, y, w) - _loss(params - step, x, y, w)) / 2e-6
    assert np.allclose(descent, -numeric, rtol=1e-3, atol=1e-5)


def test_a_cosine_learner_aligns_its_outputs_with_the_targets():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4_000, 6)).astype(np.float32)
    M = rng.normal(size=(6, 4))
    Y = (X @ M * rng.uniform(0.5, 2.0, (4_000, 1))).astype(np.float32)  # direction matters
    model = Learner(Network(6, [Dense(16, "tanh"), Dense(4)], task="regression"),
                    mode="backprop", loss="cosine", cosine_weight=1.0, target_scaling="off",
                    seed=0)
    model.learn_many(X[:3_000], Y[:3_000])
    out = model.predict_many(X[3_000:])
    cos = (out * Y[3_000:]).sum(1) / (np.linalg.norm(out, axis=1)
                                       * np.linalg.norm(Y[3_000:], axis=1))
    assert np.median(cos) > 0.95


def test_bad_loss_settings_are_refused():
    with pytest.raises(ValueError, match="loss must be one of"):
        Learner(Network(3, [Dense(2)], task="regression"), loss="hinge")
    with pytest.raises(ValueError, match=r"cosine_weight must be in \[0, 1\]"):
        Learner(Network(3, [Dense(2)], task="regression"), loss="cosine", cosine_weight=1.5)
    with pytest.raises(ValueError, match="is for regression"):
        Learner(Network(3, [Dense(2)]), loss="cosine")
