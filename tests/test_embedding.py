"""Embedding: kernels against the oracle, id validation at every boundary, a learning test."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import central_difference
from oracle import embedding as ref_embedding

from tweenstream import Dense, Learner, Network
from tweenstream.models import Embedding, Flatten
from tweenstream.runtime import layout
from tweenstream.runtime.embedding import embedding_forward, embedding_signal, embedding_update

NET = Network(5, [Embedding(7, 3), Flatten(), Dense(2)])


def test_kernels_match_oracle():
    model = Learner(NET, seed=0)
    ids = np.array([2, 6, 2, 0, 5], np.float32)  # 2 repeats: its gradients add up
    row, work, pbuf = model._plan.table[0], model.arena.work, model.arena.pbuf
    work[layout.W_ACT, :5] = ids
    embedding_forward(row, pbuf, work)
    E = model.arena.layer_params(0)["E"].copy()
    oo = row[layout.C_OUT]
    np.testing.assert_array_equal(work[layout.W_ACT, oo:oo + 15].reshape(5, 3),
                                  ref_embedding.forward(ids, E))
    g = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    work[layout.W_DELTA, oo:oo + 15] = g.ravel()
    embedding_signal(row, pbuf, work, False)
    pbuf[layout.P_VEL] = 0.0
    f32 = np.float32
    embedding_update(row, pbuf, work, f32(1), f32(1), f32(np.inf), f32(0), f32(1), f32(1), False)
    np.testing.assert_allclose(model.arena.layer_params(0)["E"] - E,
                               ref_embedding.table_gradient(ids, g.astype(np.float64), 7),
                               atol=1e-6)


@pytest.mark.parametrize("bad, message", [
    ([0, 1, 7, 2, 3], r"found 7.0 at position \(2,\)"),
    ([0, 1, -1, 2, 3], r"found -1.0 at position \(2,\)"),
    ([0, 1.5, 1, 2, 3], r"found 1.5 at position \(1,\)"),
])
def test_bad_ids_are_refused_at_the_boundary(bad, message):
    model = Learner(NET, seed=0)
    before = model.arena.params.copy()
    with pytest.raises(ValueError, match=r"token ids must be integers in \[0, 7\); " + message):
        model.learn_one(np.array(bad, np.float32), 1)
    with pytest.raises(ValueError, match=r"token ids must be integers in \[0, 7\)"):
        model.learn_many(np.array([bad], np.float32), np.array([1]))
    with pytest.raises(ValueError, match=r"token ids must be integers in \[0, 7\)"):
        model.predict_many(np.array([bad], np.float32))
    assert np.array_equal(before, model.arena.params)


def test_bad_ids_through_the_kernel_path_are_rejected():
    model = Learner(NET, seed=0)
    before = model.arena.params.copy()
    X = np.array([[0, 1, 9, 2, 3]], np.float32)
    model.engine.learn_many(*model._args, X, np.array([1]), model._yr1, False)
    st = model.state()
    assert st["rejected"] == 1 and np.array_equal(before, model.arena.params)


def test_embedding_must_come_first():
    with pytest.raises(ValueError, match=r"layer 1: an Embedding reads token ids, so it must be "
                       r"the first layer"):
        Network(4, [Dense(4), Embedding(5, 2), Flatten(), Dense(2)])


@pytest.mark.parametrize("mode", ["backprop", "tween", "hybrid"])
def test_embedding_learns_whether_a_token_occurs(mode):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 10, (20_000, 6)).astype(np.float32)
    y = (X == 3).any(axis=1).astype(np.int64)
    net = Network(6, [Embedding(10, 4), Flatten(), Dense(16, "tanh"), Dense(2)])
    model = Learner(net, mode=mode, seed=0, switch_after=5_000)
    model.learn_many(X[:18_000], y[:18_000])
    accuracy = float((model.predict_many(X[18_000:]) == y[18_000:]).mean())
    assert accuracy > 0.95, accuracy  # majority class: about 0.53


def test_oracle_table_gradient_against_finite_differences():
    rng = np.random.default_rng(2)
    ids = np.array([1, 4, 1, 0])
    E = rng.standard_normal((5, 3))
    w = rng.standard_normal((4, 3))
    analytic = ref_embedding.table_gradient(ids, w, 5)
    numeric = central_difference(lambda: float((w * ref_embedding.forward(ids, E)).sum()), E)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
