"""``diagnostics_every``: gaps and link budgets on every k-th sample, the hard triggers on all."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import quadrant_data

from tweenstream import Learner
from tweenstream.runtime import layout


@pytest.mark.parametrize("mode", ["backprop", "tween"])
def test_the_interval_changes_no_weight(net_a, mode):
    # backprop learns from the signal alone, chain tween from targets it computes anyway:
    # computing gaps and budgets less often changes nothing the model learns
    X, y = quadrant_data(1_500, seed=1)
    every, sparse = (Learner(net_a, mode=mode, seed=4, diagnostics_every=k) for k in (1, 7))
    every.learn_many(X, y)
    sparse.learn_many(X, y)
    assert every.state()["explosions"] == sparse.state()["explosions"] == 0
    # parameters and momentum; the shadow copy is refreshed only on measured samples
    for row in (layout.P_PARAM, layout.P_VEL):
        assert np.array_equal(every.arena.pbuf[row], sparse.arena.pbuf[row])


def test_state_says_when_the_diagnostics_were_computed(net_a):
    X, y = quadrant_data(12, seed=2)
    model = Learner(net_a, mode="backprop", seed=0, diagnostics_every=5)
    assert model.state()["diagnostics_at"] == 0
    seen = []
    for x, c in zip(X, y, strict=True):
        model.learn_one(x, int(c))
        seen.append(model.state()["diagnostics_at"])
    assert seen == [1, 1, 1, 1, 1, 6, 6, 6, 6, 6, 11, 11]
    assert model.state()["diagnostics_every"] == 5


def test_the_gaps_on_a_diagnostic_sample_are_those_of_every_sample(net_a):
    X, y = quadrant_data(11, seed=3)
    every, sparse = (Learner(net_a, mode="backprop", seed=1, diagnostics_every=k) for k in (1, 5))
    every.learn_many(X, y)
    sparse.learn_many(X, y)  # sample 11 is a diagnostic one: (11 - 1) % 5 == 0
    assert sparse.state()["layers"] == every.state()["layers"]


@pytest.mark.parametrize("mode", ["tween-heuristic", "tween"])
def test_modes_that_learn_from_budgets_compute_them_on_every_sample(net_a, mode):
    X, y = quadrant_data(9, seed=4)
    gate = {"chain_gate": True} if mode == "tween" else {}
    model = Learner(net_a, mode=mode, seed=0, diagnostics_every=100, **gate)
    for x, c in zip(X, y, strict=True):
        model.learn_one(x, int(c))
        assert model.state()["diagnostics_at"] == model.state()["samples_seen"]


def test_hard_triggers_fire_on_the_same_sample_whatever_the_interval(net_a):
    # a step size that overflows the weights within a few samples, long before the soft
    # trigger's warm-up: the hard trigger must catch it on the sample it happens
    X, y = quadrant_data(60, seed=5)
    X = X * 1e4
    events = []
    for k in (1, 1000):
        model = Learner(net_a, mode="backprop", optimizer="sgd", learning_rate=1e6, seed=0,
                        scaling="off", diagnostics_every=k)
        model.learn_many(X, y)
        events.append(model.state()["recent_explosions"])
    assert events[0], "the step size was meant to explode"
    assert events[0][0]["reason"] in ("non-finite parameters", "parameter norm jump")
    assert events[0] == events[1]


def test_the_soft_trigger_still_fires_with_an_interval(net_a):
    # the gap jumps on a clean stream (labels start to contradict the inputs): measured every
    # 10th sample, the EMAs still see it and the soft trigger fires
    X, y = quadrant_data(3_000, seed=6)
    y = y.copy()
    y[2_000:] = (y[2_000:] + 2) % 4
    fired = []
    for k in (1, 10):
        model = Learner(net_a, mode="tween", seed=0, diagnostics_every=k, tween_rate=3.0,
                        explosion_limit=1.5, explosion_norm_growth=1.0)
        model.learn_many(X, y)
        fired.append(model.state()["explosions"])
    assert fired[0] > 0 and fired[1] > 0, fired


def test_the_shadow_copy_is_refreshed_only_on_a_measured_sample(net_a):
    # snapshot_every=4, diagnostics_every=3: the 4th clean step (sample 4) is measured, so the
    # shadow is taken there; the next 4th clean step (sample 8) is not, so it waits for 10
    X, y = quadrant_data(10, seed=7)
    model = Learner(net_a, mode="tween", seed=0, snapshot_every=4, diagnostics_every=3)
    params = []
    for x, c in zip(X, y, strict=True):
        model.learn_one(x, int(c))
        params.append(model.arena.pbuf[layout.P_PARAM].copy())
        shadow = model.arena.pbuf[layout.P_SHADOW]
        n = len(params)
        expected = params[9] if n >= 10 else params[3] if n >= 4 else None
        if expected is not None:
            assert np.array_equal(shadow, expected), n
