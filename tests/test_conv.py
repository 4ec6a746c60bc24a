"""Conv1D / Conv2D and pooling: compiled kernels against the NumPy oracle, float64 finite
differences of the oracle (weights and inputs), and learning tests."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import central_difference
from oracle import conv as ref_conv

from tweenstream import Dense, Learner, Network
from tweenstream.models import AvgPool2D, Conv1D, Conv2D, Flatten, MaxPool2D
from tweenstream.models.conv import _geometry
from tweenstream.runtime import layout
from tweenstream.runtime.conv import (
    conv_forward,
    conv_signal,
    conv_update,
    pool_forward,
    pool_signal,
)

CASES = [
    (Conv2D(3, 3, padding="same"), (6, 5, 2)),
    (Conv2D(2, 2, stride=2), (6, 6, 3)),
    (Conv2D(2, 3, stride=2, padding="same"), (7, 6, 1)),
    (Conv1D(3, 3, stride=2, padding="same"), (9, 2)),
    (Conv1D(2, 4), (8, 3)),
]


@pytest.mark.parametrize("spec, shape", CASES, ids=str)
def test_conv_kernels_match_oracle(spec, shape):
    model = Learner(Network(shape, [spec, Flatten(), Dense(2)]), seed=0)
    H, W, C, _, _, s, pt, pl, Ho, Wo = _geometry(spec, shape)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((H, W, C)).astype(np.float32)
    row, work, pbuf = model._plan.table[0], model.arena.work, model.arena.pbuf
    work[layout.W_ACT, :x.size] = x.ravel()
    conv_forward(row, pbuf, work)
    p = model.arena.layer_params(0)
    K, b = p["W"].astype(np.float64), p["b"].astype(np.float64)
    ref_z = ref_conv.conv_forward(x.astype(np.float64), K, b, s, pt, pl, Ho, Wo)
    oo, n = row[layout.C_OUT], ref_z.size
    np.testing.assert_allclose(work[layout.W_ACT, oo:oo + n], ref_z.ravel(), atol=1e-5)
    g = rng.standard_normal(n).astype(np.float32)
    work[layout.W_DELTA, oo:oo + n] = g
    conv_signal(row, pbuf, work, True)
    ref_dx, ref_dK, ref_db = ref_conv.conv_backward(x.astype(np.float64), K,
                                                    g.reshape(ref_z.shape).astype(np.float64),
                                                    s, pt, pl)
    np.testing.assert_allclose(work[layout.W_DELTA, :x.size], ref_dx.ravel(), atol=1e-5)
    before = {k: v.copy() for k, v in p.items()}
    pbuf[layout.P_VEL] = 0.0
    f32 = np.float32
    conv_update(row, pbuf, work, f32(1), f32(1), f32(np.inf), f32(0), f32(1), f32(1), False)
    np.testing.assert_allclose(p["W"] - before["W"], ref_dK, atol=1e-5)
    np.testing.assert_allclose(p["b"] - before["b"], ref_db, atol=1e-5)


@pytest.mark.parametrize("spec", [MaxPool2D(2), AvgPool2D(2), MaxPool2D(3)], ids=str)
def test_pool_kernels_match_oracle(spec):
    shape = (6, 7, 2)
    model = Learner(Network(shape, [spec, Flatten(), Dense(2)]), seed=0)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    row, work, pbuf = model._plan.table[0], model.arena.work, model.arena.pbuf
    work[layout.W_ACT, :x.size] = x.ravel()
    pool_forward(row, pbuf, work)
    average = isinstance(spec, AvgPool2D)
    ref_a = ref_conv.pool_forward(x.astype(np.float64), spec.pool, average)
    oo = row[layout.C_OUT]
    np.testing.assert_allclose(work[layout.W_ACT, oo:oo + ref_a.size], ref_a.ravel(), atol=1e-6)
    g = np.random.default_rng(2).standard_normal(ref_a.shape).astype(np.float32)
    work[layout.W_DELTA, oo:oo + g.size] = g.ravel()
    pool_signal(row, pbuf, work, True)
    ref_dx = ref_conv.pool_backward(x.astype(np.float64), g.astype(np.float64), spec.pool,
                                    average)
    np.testing.assert_allclose(work[layout.W_DELTA, :x.size], ref_dx.ravel(), atol=1e-6)


@pytest.mark.parametrize("s, pt, pl", [(1, 1, 1), (2, 0, 1)])
def test_oracle_gradients_against_finite_differences(s, pt, pl):
    rng = np.random.default_rng(3)
    x, K, b = rng.standard_normal((5, 6, 2)), rng.standard_normal((3, 3, 2, 2)), \
        rng.standard_normal(3)
    Ho, Wo = (5 + 2 * pt - 3) // s + 1, (6 + 2 * pl - 2) // s + 1
    w = rng.standard_normal((Ho, Wo, 3))

    def loss():
        return float((w * ref_conv.conv_forward(x, K, b, s, pt, pl, Ho, Wo)).sum())

    analytic = dict(zip(("x", "K", "b"), ref_conv.conv_backward(x, K, w, s, pt, pl),
                        strict=True))
    for name, target in (("x", x), ("K", K), ("b", b)):
        numeric = central_difference(lambda: loss(), target)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


def _bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 noise images with a vertical (class 1) or horizontal (class 0) bar somewhere."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 0.3, (n, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 2, n)
    for i in range(n):
        r, c = rng.integers(0, 5, 2)
        if y[i]:
            X[i, r:r + 4, c + 1, 0] += 1.0
        else:
            X[i, r + 1, c:c + 4, 0] += 1.0
    return X.reshape(n, -1), y


@pytest.mark.parametrize("mode", ["backprop", "tween", "tween-heuristic", "hybrid"])
def test_conv2d_learns_bar_orientation(mode):
    X, y = _bars(12_000, 0)
    net = Network((8, 8, 1), [Conv2D(4, 3, activation="relu"), MaxPool2D(2), Flatten(),
                              Dense(2)])
    model = Learner(net, mode=mode, seed=0, switch_after=5_000)
    model.learn_many(X[:10_000], y[:10_000])
    accuracy = float((model.predict_many(X[10_000:]) == y[10_000:]).mean())
    assert accuracy > (0.75 if mode == "tween-heuristic" else 0.95), accuracy


# Chain-rule tween with Loom's conv rate (0.1) learns this task poorly (0.51 at tween_rate 1,
# 0.77 at 3; measured): only backprop and hybrid are held to a floor here.
@pytest.mark.parametrize("mode", ["backprop", "hybrid"])
def test_conv1d_finds_a_motif(mode):
    # class 1: the motif (+1, -1, +1) appears somewhere in a noisy sequence of 16 steps
    rng = np.random.default_rng(1)
    X = rng.normal(0, 0.4, (12_000, 16)).astype(np.float32)
    y = rng.integers(0, 2, 12_000)
    where = rng.integers(0, 13, 12_000)
    for i in np.flatnonzero(y):
        X[i, where[i]:where[i] + 3] += np.array([1.5, -1.5, 1.5], np.float32)
    net = Network((16, 1), [Conv1D(4, 3, activation="relu"), Flatten(), Dense(8, "relu"),
                            Dense(2)])
    model = Learner(net, mode=mode, seed=0, switch_after=2_000)
    model.learn_many(X[:10_000], y[:10_000])
    assert float((model.predict_many(X[10_000:]) == y[10_000:]).mean()) > 0.9


@pytest.mark.parametrize("average", [False, True])
def test_pool_oracle_against_finite_differences(average):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 6, 2))  # distinct values: the maxima are unique
    w = rng.standard_normal((2, 3, 2))
    analytic = ref_conv.pool_backward(x, w, 2, average)
    numeric = central_difference(lambda: float((w * ref_conv.pool_forward(x, 2, average)).sum()), x)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("spec, shape", [
    (Conv1D(2, 1000), (1003, 1)),  # the old packed row read kernel 1000 as kh=2, kw=0
    (Conv1D(1, 2101, padding="same", activation="tanh"), (2101, 1)),  # pad_left 1050
    (Conv2D(1, 3, stride=1001), (4, 1003, 1)),
], ids=str)
def test_conv_of_any_legal_size_matches_oracle_and_onnx(spec, shape):
    """Row integers are stored one per column, by name: no size limit, no decoding."""
    from tweenstream.export import builder
    from tweenstream.models.conv import CONV2D
    from tweenstream.runtime.layout import dim

    net = Network(shape, [spec, Flatten(), Dense(2)])
    model = Learner(net, seed=0)
    H, W, C, kh, kw, s, pt, pl, Ho, Wo = _geometry(spec, shape)
    row = model._plan.table[0]
    assert [row[dim(CONV2D, n)] for n in ("kh", "kw", "stride", "pad_top", "pad_left")] == \
        [kh, kw, s, pt, pl]
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, net.n_inputs)).astype(np.float32)
    model.learn_many(X, np.array([0, 1, 0]))
    x = X[0].reshape(H, W, C).astype(np.float64)
    p = model.arena.layer_params(0)
    z = ref_conv.conv_forward(x, p["W"].astype(np.float64), p["b"].astype(np.float64), s, pt,
                              pl, Ho, Wo)
    a = np.tanh(z) if spec.activation == "tanh" else z
    head = model.arena.layer_params(2)
    logits = head["W"].astype(np.float64) @ a.ravel() + head["b"]
    probs = np.exp(logits - logits.max())
    np.testing.assert_allclose(model.predict_proba_many(X[:1])[0], probs / probs.sum(),
                               atol=1e-5)
    sess = builder.session(builder.build_model(model))
    np.testing.assert_allclose(sess.run(None, {"input": X})[0], model.predict_proba_many(X),
                               atol=1e-5)
