"""MultiHeadAttention: kernels against the NumPy oracle (causal or not), float64 finite
differences of the oracle, and a learning test."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import central_difference
from oracle import attention as ref_attention

from tweenstream import Dense, Learner, Network
from tweenstream.models import Flatten, MultiHeadAttention
from tweenstream.runtime import layout
from tweenstream.runtime.attention import attention_forward, attention_signal, attention_update

T, D, HEADS = 4, 6, 2
NAMES = ["W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o"]


@pytest.mark.parametrize("causal", [False, True])
def test_kernels_match_oracle(causal):
    model = Learner(Network((T, D), [MultiHeadAttention(HEADS, causal=causal), Flatten(),
                                     Dense(2)]), seed=0)
    rng = np.random.default_rng(0)
    p = model.arena.layer_params(0)
    for n in "qkvo":
        p[f"b_{n}"][:] = rng.uniform(-0.3, 0.3, D)
    x = rng.standard_normal((T, D)).astype(np.float32)
    row, work, pbuf = model._plan.table[0], model.arena.work, model.arena.pbuf
    work[layout.W_ACT, :T * D] = x.ravel()
    attention_forward(row, pbuf, work)
    q = {k: v.astype(np.float64) for k, v in p.items()}
    ref_y, cache = ref_attention.forward(x.astype(np.float64), *(q[n] for n in NAMES), HEADS,
                                         causal)
    oo = row[layout.C_OUT]
    np.testing.assert_allclose(work[layout.W_ACT, oo:oo + T * D], ref_y.ravel(), atol=1e-6)
    G = rng.standard_normal((T, D)).astype(np.float32)
    work[layout.W_DELTA, oo:oo + T * D] = G.ravel()
    attention_signal(row, pbuf, work, True)
    grads = ref_attention.backward(x.astype(np.float64), cache, q["W_q"], q["W_k"], q["W_v"],
                                   q["W_o"], G.astype(np.float64), HEADS)
    np.testing.assert_allclose(work[layout.W_DELTA, :T * D], grads[0].ravel(), atol=1e-6)
    before = {k: v.copy() for k, v in p.items()}
    pbuf[layout.P_VEL] = 0.0
    f32 = np.float32
    attention_update(row, pbuf, work, f32(1), f32(1), f32(np.inf), f32(0), f32(1), f32(1), False)
    for name, ref_grad in zip(NAMES, grads[1:], strict=True):
        np.testing.assert_allclose(p[name] - before[name], ref_grad, atol=3e-6, err_msg=name)


@pytest.mark.parametrize("causal", [False, True])
def test_oracle_gradients_against_finite_differences(causal):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((T, D))
    params = [rng.standard_normal((D, D)) * 0.5 for _ in range(4)] + \
        [rng.standard_normal(D) * 0.2 for _ in range(4)]
    w = rng.standard_normal((T, D))

    def loss():
        return float((w * ref_attention.forward(x, *params, HEADS, causal)[0]).sum())

    cache = ref_attention.forward(x, *params, HEADS, causal)[1]
    analytic = ref_attention.backward(x, cache, *params[:4], w, HEADS)
    for target, grad in zip([x, *params], analytic, strict=True):
        numeric = central_difference(lambda: loss(), target)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


# Stated settings: backprop with heavy-ball momentum 0.9 (the default) reaches only 0.77 here;
# plain SGD at 0.03 reaches 1.0, tween at its defaults 0.98 (measured).
SETTINGS = {"backprop": {"optimizer": "sgd", "momentum": 0.0, "learning_rate": 0.03}, "tween": {},
            "hybrid": {"optimizer": "sgd", "momentum": 0.0, "learning_rate": 0.03,
                       "switch_after": 5_000}}


@pytest.mark.parametrize("mode", list(SETTINGS))
def test_attention_learns_the_majority_token(mode):
    # 7 steps, each a one-hot token of 3 kinds plus a noise feature: the class is the most
    # frequent token
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 3, (20_000, 7))
    X = np.zeros((20_000, 7, 4), np.float32)
    X[np.arange(20_000)[:, None], np.arange(7)[None, :], tokens] = 1.0
    X[:, :, 3] = rng.normal(0, 0.3, (20_000, 7))
    y = np.array([np.bincount(t, minlength=3).argmax() for t in tokens])
    net = Network((7, 4), [MultiHeadAttention(2), Flatten(), Dense(3)])
    model = Learner(net, mode=mode, seed=0, **SETTINGS[mode])
    model.learn_many(X[:18_000].reshape(18_000, -1), y[:18_000])
    accuracy = float((model.predict_many(X[18_000:].reshape(2_000, -1)) == y[18_000:]).mean())
    assert accuracy > 0.85, accuracy  # majority class: about 0.37
