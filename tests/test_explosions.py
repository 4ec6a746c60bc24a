"""Explosions: detected, rolled back, backed off, counted, and recovered from."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import quadrant_data

from tweenstream import Dense, Learner, Network
from tweenstream.runtime import layout

HELD_OUT = quadrant_data(2_000, seed=99)


def _accuracy(model: Learner) -> float:
    X, y = HELD_OUT
    return float((model.predict_many(X) == y).mean())


def _finite(model: Learner) -> bool:
    return bool(np.isfinite(model.arena.pbuf).all())


@pytest.mark.parametrize("mode, setting", [("backprop", "learning_rate"), ("tween", "tween_rate")])
def test_learning_rate_times_1000(net_a, mode, setting):
    model = Learner(net_a, mode=mode, seed=0)
    model.learn_many(*quadrant_data(6_000, seed=1))
    before = _accuracy(model)
    base = model.config.lr if setting == "learning_rate" else getattr(model.config, setting)
    model.configure(**{setting: base * 1000})
    model.learn_many(*quadrant_data(1_000, seed=2))
    st = model.state()
    assert st["explosions"] > 0 and st["rollbacks"] > 0
    assert st["adaptive_rate"] < 1.0
    assert _finite(model)
    model.configure(**{setting: base})
    model.learn_many(*quadrant_data(6_000, seed=3))
    assert _finite(model)
    assert _accuracy(model) >= before - 0.03, (before, _accuracy(model))


def test_sustained_explosions_back_off_to_the_floor(net_a):
    model = Learner(net_a, mode="backprop", seed=0, learning_rate=1e4)
    model.learn_many(*quadrant_data(3_000, seed=1))
    st = model.state()
    assert st["explosions"] > 10
    assert st["adaptive_rate"] < 0.05
    assert _finite(model)
    assert {e["reason"] for e in st["recent_explosions"]} <= set(layout.REASONS.values())


@pytest.mark.parametrize("target_scaling", ["off", "auto"])
@pytest.mark.parametrize("mode", ["backprop", "tween", "tween-heuristic"])
def test_burst_of_huge_targets(mode, target_scaling):
    """Unscaled, the explosion guard catches the burst; with the targets standardised (the
    default) the burst is clipped to 8 standard deviations, in what is learned and in the
    target statistics, which it barely moves."""
    net = Network(4, [Dense(16, "tanh"), Dense(1)], task="regression")
    model = Learner(net, mode=mode, seed=0, target_scaling=target_scaling)
    rng = np.random.default_rng(0)

    def batch(n: int, scale: float = 1.0):
        X = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
        return X, (scale * 0.5 * (X[:, 0] - X[:, 1])).astype(np.float32)

    model.learn_many(*batch(4_000))
    mae_before = model.state()["running_mae"]
    scaler = model.target_scaler
    std_before = None if scaler is None else float(scaler.std[0])
    model.learn_many(*batch(30, scale=1e6))
    if scaler is None:
        # the soft trigger looks at every diagnostics_every-th sample: it has caught the burst
        # by the next one
        model.learn_many(*batch(model.config.diagnostics_every))
        assert model.state()["explosions"] > 0
    else:
        assert float(scaler.std[0]) < 1.5 * std_before
    assert _finite(model)
    model.learn_many(*batch(4_000))
    assert _finite(model)
    Xt, yt = batch(1_000)
    assert float(np.abs(model.predict_many(Xt) - yt).mean()) < max(2 * mae_before, 0.05)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("mode", ["backprop", "tween", "tween-heuristic"])
def test_non_finite_sample_through_the_kernel_path(net_a, mode, bad):
    model = Learner(net_a, mode=mode, seed=0)
    model.learn_many(*quadrant_data(3_000, seed=1))
    twin = model.clone(include_state=True)  # sees the same stream without the bad sample
    params = model.arena.params.copy()
    X, y = quadrant_data(1, seed=2)
    X[0, 3] = bad
    # validate=False: the API check is bypassed, so the in-kernel guard must hold the line
    assert model.engine.learn_many(*model._args, X, y, model._yr1, False) == -1
    st = model.state()
    assert st["explosions"] == 1 and st["rejected"] == 1
    assert st["recent_explosions"] == [{"sample": 3_000, "reason": "non-finite input"}]
    assert np.array_equal(params, model.arena.params)
    clean = quadrant_data(12_000, seed=3)  # long enough that both are near convergence
    model.learn_many(*clean)
    twin.learn_many(*clean)
    assert _finite(model)
    assert _accuracy(model) >= _accuracy(twin) - 0.03


def test_non_finite_parameters_roll_back_to_the_shadow(net_a):
    model = Learner(net_a, mode="tween", seed=0, snapshot_every=500)
    model.learn_many(*quadrant_data(1_000, seed=1))  # shadow refreshed at samples 500 and 1000
    shadow = model.arena.pbuf[layout.P_SHADOW].copy()
    X, y = quadrant_data(10, seed=2)
    model.arena.params[5] = np.inf  # corrupt the weights (a stand-in for an overflow)
    model.learn_many(X[:1], y[:1])
    st = model.state()
    assert st["rollbacks"] == 1 and st["recent_explosions"][-1]["reason"] in (
        "non-finite parameters", "non-finite output or signal")
    assert np.array_equal(model.arena.params, shadow)
    assert not model.arena.pbuf[layout.P_VEL].any()


def test_rate_recovers_after_clean_steps(net_a):
    model = Learner(net_a, mode="tween", seed=0)
    model.learn_many(*quadrant_data(500, seed=1))
    X, y = quadrant_data(2, seed=2)
    X[0, 0] = np.nan
    model.engine.learn_many(*model._args, X[:1], y[:1], model._yr1, False)
    assert model.state()["adaptive_rate"] == pytest.approx(0.7)
    model.learn_many(*quadrant_data(8, seed=3))  # 1.05^8 > 1/0.7
    assert model.state()["adaptive_rate"] == 1.0


def test_clean_data_triggers_nothing(net_a):
    for mode in ("backprop", "tween", "tween-heuristic"):
        model = Learner(net_a, mode=mode, seed=0)
        model.learn_many(*quadrant_data(30_000, seed=4))
        assert model.state()["explosions"] == 0, mode


@pytest.mark.parametrize("mode, setting, floor", [
    ("tween", {"tween_rate": 10.0, "depth_scale_factor": 1.2}, 0.8),
    ("backprop", {"optimizer": "sgd", "learning_rate": 1.0}, 0.5)])
def test_a_rollback_storm_ends(net_a, mode, setting, floor):
    """A rate far too high makes the same growth come back after every rollback. Before the
    storm policy this ran about 90 (tween) and 236 (backprop) rollbacks to the first shadow
    copy in 6,000 samples, the model held near it. Now the rate's ceiling halves with each
    rollback to the same copy, the copy is refreshed sooner while the model does as well as at
    it, and no copy takes more than 5 rollbacks; the storms are counted and the model goes on
    learning (0.87 and 0.54 measured; the backprop rate is 100x a sane one, so it learns
    poorly even held down). Tween keeps Loom's depth scale 1.2, as when this was measured: at
    the default 1.0 the storm ends alike, and the model then reaches 0.75."""
    model = Learner(net_a, mode=mode, seed=0, **setting)
    model.learn_many(*quadrant_data(6_000, seed=1))
    st = model.state()
    assert st["storms"] >= 1 and 3 <= st["most_rollbacks_to_one_snapshot"] <= 5, st
    assert st["adaptive_rate"] <= st["rate_ceiling"]
    assert _finite(model)
    assert _accuracy(model) > floor, _accuracy(model)


def test_repeated_rollbacks_to_one_copy_lower_the_ceiling_and_refresh_it_sooner(net_a):
    """Hard triggers (non-finite parameters) on one copy: the first rollback backs the rate off
    as always (ceiling 1); each further one holds the ceiling down one more notch (halves it), and
    the copy is refreshed after snapshot_every / 2^notches clean steps (64 / 4 = 16 here); a
    refresh forgets the count and releases one notch (then 64 / 2 = 32 steps to the next)."""
    model = Learner(net_a, mode="tween", seed=0, snapshot_every=64)
    X, y = quadrant_data(400, seed=1)
    model.learn_many(X[:64], y[:64])  # a fresh copy at sample 64

    def blow_up():
        model.arena.params[5] = np.inf
        model.learn_many(X[100:101], y[100:101])

    blow_up()
    assert (model.state()["rollbacks_to_snapshot"], model.state()["rate_ceiling"]) == (1, 1.0)
    blow_up()
    blow_up()
    st = model.state()
    assert st["rollbacks_to_snapshot"] == 3 and st["storms"] == 1
    assert st["rate_ceiling"] == 0.25
    shadow = model.arena.pbuf[layout.P_SHADOW].copy()
    model.learn_many(X[200:215], y[200:215])  # 64 >> 2 = 16 clean steps are needed
    assert np.array_equal(model.arena.pbuf[layout.P_SHADOW], shadow)
    model.learn_many(X[215:216], y[215:216])
    st = model.state()
    assert not np.array_equal(model.arena.pbuf[layout.P_SHADOW], shadow)
    assert st["rollbacks_to_snapshot"] == 0 and st["rate_ceiling"] == 0.5
    assert st["adaptive_rate"] <= st["rate_ceiling"]
    assert st["most_rollbacks_to_one_snapshot"] == 3
    shadow = model.arena.pbuf[layout.P_SHADOW].copy()
    model.learn_many(X[216:248], y[216:248])  # then 64 >> 1 = 32
    assert not np.array_equal(model.arena.pbuf[layout.P_SHADOW], shadow)
    assert model.state()["rate_ceiling"] == 1.0


def test_a_hybrid_switch_starts_the_guard_afresh(net_a):
    """A tween phase that stormed (three rollbacks to one copy: the ceiling held down two
    notches, a storm counted) hands backprop a guard at rate 1 with its ceiling at 1, no hold
    and a shadow copy taken at the switch; backprop then learns without explosions."""
    model = Learner(net_a, mode="hybrid", seed=0, switch_after=600)
    X, y = quadrant_data(4_000, seed=1)
    model.learn_many(X[:500], y[:500])
    for i in range(500, 503):
        model.arena.params[5] = np.inf
        model.learn_many(X[i:i + 1], y[i:i + 1])
    model.learn_many(X[503:599], y[503:599])
    before = model.state()
    assert before["phase"] == "tween" and before["storms"] == 1
    assert before["rate_ceiling"] == 0.25 and before["adaptive_rate"] <= 0.25
    model.learn_many(X[599:600], y[599:600])
    st = model.state()
    assert st["switched_at"] == 600 and st["phase"] == "backprop"
    assert (st["adaptive_rate"], st["rate_ceiling"], st["rollbacks_to_snapshot"]) == (1.0, 1.0, 0)
    assert np.array_equal(model.arena.pbuf[layout.P_SHADOW], model.arena.params)
    model.learn_many(X[600:], y[600:])
    assert model.state()["explosions"] == st["explosions"]
    assert _accuracy(model) > 0.9
