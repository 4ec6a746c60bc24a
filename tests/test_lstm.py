"""LSTM: compiled kernels against the NumPy oracle, float64 finite differences of the oracle
(weights and inputs), and a sequence learning test."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import central_difference
from oracle import lstm as ref_lstm

from tweenstream import Dense, Learner, Network
from tweenstream.models import LSTM, Flatten
from tweenstream.runtime import layout
from tweenstream.runtime.lstm import lstm_forward, lstm_signal, lstm_update

T, F, H = 4, 3, 5


@pytest.mark.parametrize("seq", [False, True])
def test_kernels_match_oracle(seq):
    layers = [LSTM(H, return_sequences=seq)] + ([Flatten()] if seq else []) + [Dense(2)]
    model = Learner(Network((T, F), layers), seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, F)).astype(np.float32)
    row, work, pbuf = model._plan.table[0], model.arena.work, model.arena.pbuf
    work[layout.W_ACT, :T * F] = x.ravel()
    lstm_forward(row, pbuf, work)
    p = {k: v.astype(np.float64) for k, v in model.arena.layer_params(0).items()}
    ref_h, cache = ref_lstm.forward(x.astype(np.float64), p["W"], p["U"], p["b"])
    oo, n = row[layout.C_OUT], (T * H if seq else H)
    np.testing.assert_allclose(work[layout.W_ACT, oo:oo + n],
                               ref_h.ravel() if seq else ref_h[-1], atol=1e-6)
    up = rng.standard_normal(n).astype(np.float32)
    work[layout.W_DELTA, oo:oo + n] = up
    g = up.reshape(T, H) if seq else np.vstack([np.zeros((T - 1, H)), up[None]])
    ref_dx, ref_dW, ref_dU, ref_db = ref_lstm.backward(x.astype(np.float64), ref_h, cache,
                                                       p["W"], p["U"], g)
    lstm_signal(row, pbuf, work, True)
    np.testing.assert_allclose(work[layout.W_DELTA, :T * F].reshape(T, F), ref_dx, atol=1e-6)
    before = {k: v.copy() for k, v in model.arena.layer_params(0).items()}
    pbuf[layout.P_VEL] = 0.0
    f32 = np.float32
    lstm_update(row, pbuf, work, f32(1), f32(1), f32(np.inf), f32(0), f32(1), f32(1), False)
    after = model.arena.layer_params(0)
    for name, ref_grad in (("W", ref_dW), ("U", ref_dU), ("b", ref_db)):
        np.testing.assert_allclose(after[name] - before[name], ref_grad, atol=2e-6, err_msg=name)


def test_oracle_gradients_against_finite_differences():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((T, F))
    W, U, b = rng.standard_normal((4 * H, F)) * 0.5, rng.standard_normal((4 * H, H)) * 0.4, \
        rng.standard_normal(4 * H) * 0.1
    w = rng.standard_normal((T, H))

    def loss():
        return float((w * ref_lstm.forward(x, W, U, b)[0]).sum())

    hs, cache = ref_lstm.forward(x, W, U, b)
    analytic = dict(zip(("x", "W", "U", "b"), ref_lstm.backward(x, hs, cache, W, U, w),
                        strict=True))
    for name, target in (("x", x), ("W", W), ("U", U), ("b", b)):
        numeric = central_difference(lambda: loss(), target)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


SETTINGS = {"backprop": {"momentum": 0.0, "learning_rate": 0.03}, "tween": {"tween_rate": 0.6},
            "tween-heuristic": {}, "hybrid": {"tween_rate": 0.6, "momentum": 0.0,
                                              "learning_rate": 0.03, "switch_after": 20_000}}
FLOORS = {"backprop": 0.9, "tween": 0.9, "tween-heuristic": 0.55, "hybrid": 0.9}


@pytest.mark.parametrize("mode", list(SETTINGS))
def test_lstm_learns_the_sign_of_a_running_sum(mode):
    rng = np.random.default_rng(0)
    steps = 8
    X = (rng.choice([-1.0, 1.0], (40_000, steps)) * rng.uniform(0.2, 1, (40_000, steps)))
    X = X.astype(np.float32)
    y = (X.sum(axis=1) > 0).astype(np.int64)
    model = Learner(Network((steps, 1), [LSTM(12), Dense(2)]), mode=mode, seed=0,
                    **SETTINGS[mode])
    model.learn_many(X[:35_000], y[:35_000])
    accuracy = float((model.predict_many(X[35_000:]) == y[35_000:]).mean())
    assert accuracy > FLOORS[mode], accuracy  # majority class: about 0.5
