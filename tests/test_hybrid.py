"""Hybrid mode: tween, then backprop after N samples or on a plateau; momentum reset. The
default trigger, the race, is tested in tests/test_race.py."""

from __future__ import annotations

import numpy as np
from helpers import quadrant_data

from tweenstream import Learner
from tweenstream.runtime import layout


def test_switch_after_n_samples(net_a):
    model = Learner(net_a, mode="hybrid", seed=0, switch_after=1_234)
    X, y = quadrant_data(3_000, seed=0)
    model.learn_many(X[:1_233], y[:1_233])
    assert model.state()["phase"] == "tween" and model.state()["switched_at"] is None
    model.learn_one(X[1_233], int(y[1_233]))
    st = model.state()
    assert st["phase"] == "backprop" and st["switched_at"] == 1_234
    assert not model.arena.pbuf[layout.P_VEL].any()  # momentum reset at the switch
    model.learn_many(X[1_234:], y[1_234:])
    assert model.state()["switched_at"] == 1_234


def test_hybrid_equals_tween_then_backprop(net_a):
    X, y = quadrant_data(2_000, seed=1)
    hybrid = Learner(net_a, mode="hybrid", seed=4, switch_after=800)
    hybrid.learn_many(X, y)
    manual = Learner(net_a, mode="tween", seed=4)
    manual.learn_many(X[:800], y[:800])
    manual.set_phase("backprop")
    manual.learn_many(X[800:], y[800:])
    assert np.array_equal(hybrid.arena.params, manual.arena.params)


def test_switch_on_plateau(net_a):
    model = Learner(net_a, mode="hybrid", seed=0, hybrid_switch="plateau", plateau_window=500,
                    plateau_patience=2, plateau_min_gain=0.01)
    model.learn_many(*quadrant_data(30_000, seed=2))
    st = model.state()
    assert st["phase"] == "backprop"
    assert st["switched_at"] is not None and st["switched_at"] % 500 == 0
    assert st["switched_at"] < 30_000


def test_no_plateau_no_switch(net_a):
    model = Learner(net_a, mode="hybrid", seed=0, hybrid_switch="plateau", plateau_window=1_000,
                    plateau_patience=50)
    model.learn_many(*quadrant_data(5_000, seed=2))
    assert model.state()["phase"] == "tween"
