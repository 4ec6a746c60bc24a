"""Same seed, same result; and one compilation serves every network."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import quadrant_data

from tweenstream import Dense, Learner, Network


@pytest.mark.parametrize("mode", ["backprop", "tween", "tween-heuristic", "hybrid"])
def test_same_seed_same_weights(net_a, mode):
    X, y = quadrant_data(2_000, seed=0)
    a, b = Learner(net_a, mode=mode, seed=11), Learner(net_a, mode=mode, seed=11)
    a.learn_many(X, y)
    b.learn_many(X, y)
    assert np.array_equal(a.arena.params, b.arena.params)
    assert not np.array_equal(a.arena.params, Learner(net_a, mode=mode, seed=12).arena.params)


def test_one_compilation_serves_every_network_of_a_kind_set(monkeypatch):
    monkeypatch.setenv("TWEENSTREAM_ENGINE", "kinds")
    first = Learner(Network(8, [Dense(32, "tanh"), Dense(4)]), seed=0)
    X, y = quadrant_data(10, seed=0)
    first.learn_many(X, y)
    first.predict_many(X)
    from tweenstream.runtime.interpreter import dense_predict_many  # Dense-only predictions

    kernels = [first.engine.learn_many, dense_predict_many]
    before = [list(k.signatures) for k in kernels]
    assert all(len(s) == 1 for s in before)
    other = Learner(Network(5, [Dense(7, "relu"), Dense(9, "sine"), Dense(3, "sigmoid"),
                                Dense(2)], task="regression"), mode="tween", seed=1)
    other.learn_many(np.ones((4, 5), np.float32), np.zeros((4, 2), np.float32))
    other.learn_one(np.ones(5, np.float32), [0.5, 0.5])
    other.predict_many(np.ones((3, 5), np.float32))
    assert other.engine is first.engine and first.engine.kinds == ("dense",)
    assert [list(k.signatures) for k in kernels] == before
    # the heuristic sweep is an engine of its own, compiled once as well
    heuristic = Learner(Network(5, [Dense(7, "relu"), Dense(2)]), mode="tween-heuristic")
    heuristic.learn_many(np.ones((4, 5), np.float32), np.zeros(4, np.int64))
    assert heuristic.engine is not first.engine and heuristic.engine.kinds == ("dense",)
    assert len(heuristic.engine.learn_many.signatures) == 1


def test_set_phase_switches_to_the_engine_of_that_phase(monkeypatch):
    """Per-kind-set engines: the heuristic sweep lives in an engine of its own, chosen by the
    phase in effect, so switching phase mid-stream keeps learning (and stays deterministic)."""
    monkeypatch.setenv("TWEENSTREAM_ENGINE", "kinds")
    X, y = quadrant_data(600, seed=3)
    runs = []
    for _ in range(2):
        model = Learner(Network(8, [Dense(16, "tanh"), Dense(4)]), mode="tween", seed=2)
        model.learn_many(X[:200], y[:200])
        plain = model.engine
        assert not plain.heuristic
        model.set_phase("tween-heuristic")
        assert model.engine.heuristic and model.engine.kinds == plain.kinds
        model.learn_many(X[200:400], y[200:400])
        model.set_phase("backprop")
        assert model.engine is plain
        model.learn_many(X[400:], y[400:])
        assert model.state()["samples_seen"] == 600
        runs.append(model.arena.params.copy())
    assert np.array_equal(runs[0], runs[1])
