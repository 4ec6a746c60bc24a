"""The hybrid's race: a backprop copy learns beside tween and the learner switches on evidence."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import quadrant_data

from tweenstream import Learner, TweenConfig, load
from tweenstream.runtime import layout
from tweenstream.runtime.race import Race


def _hybrid(net, **settings):
    return Learner(net, mode="hybrid", seed=3, race_first=400, race_length=200, **settings)


def test_races_follow_the_doubling_schedule_and_tween_keeps_a_race_it_wins(net_a):
    # backprop at a rate too small to move: it cannot beat tween, so tween goes on
    model = _hybrid(net_a, learning_rate=1e-9)
    X, y = quadrant_data(3_300, seed=0)
    model.learn_many(X[:399], y[:399])
    assert model.state()["races"] == 0
    model.learn_many(X[399:401], y[399:401])
    st = model.state()
    assert st["races"] == 1 and st["racing"]
    model.learn_many(X[401:], y[401:])  # races at 400, 800, 1,600 and 3,200 (still running)
    st = model.state()
    assert (st["races"], st["races_won_by_backprop"], st["phase"]) == (4, 0, "tween")
    assert st["racing"] and st["switched_at"] is None
    assert set(st["last_race_losses"]) == {"tween", "backprop"}


def test_backprop_ahead_switches_with_its_warm_optimiser(net_a):
    # tween at a rate too small to move: backprop wins the first race
    model = _hybrid(net_a, tween_rate=1e-6)
    X, y = quadrant_data(1_000, seed=1)
    model.learn_many(X[:600], y[:600])
    st = model.state()
    assert (st["phase"], st["switched_at"], st["races"], st["races_won_by_backprop"]) == \
        ("backprop", 600, 1, 1)
    assert st["last_race_losses"]["backprop"] < st["last_race_losses"]["tween"]
    # the shadow's 200 Adam steps come along: the optimiser is warm, not reset
    assert model.arena.ist[layout.N_OPT_STEP] == 200
    assert model.arena.pbuf[layout.P_SQ].any()
    model.learn_many(X[600:], y[600:])
    assert model.state()["races"] == 1  # no race after the switch


def test_the_switch_equals_a_backprop_copy_started_at_the_race(net_a):
    X, y = quadrant_data(700, seed=2)
    model = _hybrid(net_a, tween_rate=1e-6)
    model.learn_many(X, y)
    # by hand: tween to the race's start, then a backprop copy learns the race's samples
    manual = Learner(net_a, mode="tween", seed=3, tween_rate=1e-6)
    manual.learn_many(X[:400], y[:400])
    manual.set_phase("backprop")
    manual.learn_many(X[400:], y[400:])
    assert np.array_equal(model.arena.params, manual.arena.params)


def test_learn_one_and_learn_many_race_alike(net_a):
    X, y = quadrant_data(1_300, seed=3)
    many, one = _hybrid(net_a), _hybrid(net_a)
    many.learn_many(X, y)
    for x, label in zip(X, y.tolist(), strict=True):
        one.learn_one(x, label)
    assert np.array_equal(many.arena.pbuf, one.arena.pbuf)
    assert many.state() == one.state()


@pytest.mark.parametrize("cut", [450, 550])  # first half of a race, second half
def test_saved_mid_race_goes_on_as_if_never_stopped(net_a, tmp_path, cut):
    X, y = quadrant_data(1_500, seed=4)
    straight = _hybrid(net_a)
    straight.learn_many(X, y)
    stopped = _hybrid(net_a)
    stopped.learn_many(X[:cut], y[:cut])
    assert stopped.state()["racing"]
    stopped.save(tmp_path / "m.tsm")
    resumed = load(tmp_path / "m.tsm")
    assert resumed.state() == stopped.state()
    resumed.learn_many(X[cut:], y[cut:])
    assert np.array_equal(straight.arena.pbuf, resumed.arena.pbuf)
    assert straight.state() == resumed.state()
    copy = stopped.clone(include_state=True)  # a copy with its state races on alike
    copy.learn_many(X[cut:], y[cut:])
    assert np.array_equal(straight.arena.pbuf, copy.arena.pbuf)


def test_a_set_phase_or_new_parameters_end_the_race(net_a):
    X, y = quadrant_data(500, seed=5)
    model = _hybrid(net_a)
    model.learn_many(X[:450], y[:450])
    assert model.state()["racing"]
    model.set_phase("backprop")
    assert not model.state()["racing"]
    model = _hybrid(net_a)
    model.learn_many(X[:450], y[:450])
    model.replace_params(model.arena.params.copy())
    assert not model.state()["racing"]
    model.learn_many(X[450:], y[450:])
    assert model.state()["phase"] == "tween"


def test_other_triggers_and_modes_do_not_race(net_a):
    X, y = quadrant_data(1_000, seed=6)
    for settings in ({"mode": "hybrid", "hybrid_switch": "plateau"},
                     {"mode": "hybrid", "switch_after": 2_000}, {"mode": "tween"},
                     {"mode": "backprop"}):
        model = Learner(net_a, seed=0, race_first=100, **settings)
        model.learn_many(X, y)
        st = model.state()
        assert (st["races"], st["racing"], st["last_race_losses"]) == (0, False, None)


@pytest.mark.parametrize("settings, message", [
    ({"hybrid_switch": "sometimes"}, "hybrid_switch must be one of race, plateau"),
    ({"race_length": 1}, "race_length must be >= 2"),
    ({"race_first": 0}, "race_first must be >= 1"),
    ({"race_z": -1.0}, "race_z must be >= 0"),
])
def test_race_settings_are_checked(settings, message):
    with pytest.raises(ValueError, match=message):
        TweenConfig(**settings)


def test_the_decision_needs_evidence_beyond_the_noise():
    race = Race(100, 50, 2.0)
    rng = np.random.default_rng(0)
    for shift, expected in ((0.0, False), (0.05, True), (-0.05, False)):
        d = rng.normal(shift, 0.1, 400)
        race.paired[:] = (d.size, d.sum(), (d * d).sum())
        assert race.backprop_ahead() is expected
    race.paired[:] = (1, 5.0, 25.0)  # one pair is no evidence
    assert race.backprop_ahead() is False


def test_the_hybrid_recovers_where_tween_is_behind():
    """The suite's Dense x1 body on its noisy quadrant task, 6,000 samples, library defaults.
    Tween ends 0.02 behind backprop. The plateau trigger never fires, so the hybrid stays
    with tween; with the race it switches at 2,500 samples and ends ahead of backprop
    (measured: backprop 0.966, tween and plateau 0.943, race 0.978)."""
    from bench.accuracy.tables import KINDS, Budget, _data

    spec = KINDS["Dense"]
    (X, y), (Xt, yt) = _data(spec.make, 0, list(KINDS).index("Dense"), Budget(), 6_000)

    def accuracy(mode, **settings):
        model = Learner(spec.build(1), mode=mode, seed=0, **settings)
        model.learn_many(X, y)
        return float((model.predict_many(Xt) == yt).mean()), model.state()["switched_at"]

    backprop, _ = accuracy("backprop")
    tween, _ = accuracy("tween")
    plateau, never = accuracy("hybrid", hybrid_switch="plateau")
    race, switched = accuracy("hybrid")
    assert tween < backprop - 0.01 and never is None and plateau == tween
    assert switched is not None and race >= backprop


def test_a_bad_row_anywhere_in_a_batch_learns_nothing_during_a_race(net_a):
    """A batch that spans a race's events is learned in pieces; a bad row in a later piece
    must still leave everything as it was."""
    X, y = quadrant_data(1_000, seed=8)
    model = _hybrid(net_a, scaling="off", target_scaling="off")
    model.learn_many(X[:390], y[:390])
    before = model.arena.pbuf.copy(), model.state()
    bad = X[390:900].copy()
    bad[400, 3] = np.nan  # row 790 of the stream: after the race's start and half-way point
    with pytest.raises(ValueError, match="row 400: X has NaN or inf"):
        model.learn_many(bad, y[390:900])
    assert np.array_equal(model.arena.pbuf, before[0]) and model.state() == before[1]


@pytest.mark.parametrize("edit", [
    {"start": 10_000},  # a race that cannot be running at sample 450 or 560
    {"marked": True, "block": [100, 0, 0, 0, 0]},  # a scored block that ended long ago
    {"paired": [1, float("nan"), 0]},
])
@pytest.mark.parametrize("cut", [450, 560])
def test_inconsistent_race_tallies_are_refused(net_a, tmp_path, edit, cut):
    import json
    import zipfile

    from tweenstream.runtime.persist import ModelFileError

    model = _hybrid(net_a)
    model.learn_many(*quadrant_data(cut, seed=9))
    path = tmp_path / "m.tsm"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(files["manifest.json"])
    manifest["race"].update(edit)
    files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data)
    with pytest.raises(ModelFileError, match="race"):
        load(path)


def test_a_bad_target_anywhere_in_a_batch_learns_nothing_during_a_race():
    """The same for a regression target: the batch is checked whole, targets included."""
    from tweenstream import Dense, Network

    rng = np.random.default_rng(3)
    X = rng.normal(size=(900, 4)).astype(np.float32)
    Y = X[:, :1] * 2.0
    model = Learner(Network(4, [Dense(8, "tanh"), Dense(1)], task="regression"), mode="hybrid",
                    seed=0, race_first=400, race_length=200, scaling="off",
                    target_scaling="off")
    model.learn_many(X[:390], Y[:390])
    before = model.arena.pbuf.copy(), model.state()
    bad = Y[390:900].copy()
    bad[400, 0] = np.nan
    with pytest.raises(ValueError, match="row 400: y has NaN or inf"):
        model.learn_many(X[390:900], bad)
    assert np.array_equal(model.arena.pbuf, before[0]) and model.state() == before[1]
