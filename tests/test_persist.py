"""save/load: exact continuation, and clear errors for damaged files."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
from helpers import quadrant_data

from tweenstream import Dense, Learner, Network, load
from tweenstream.runtime import layout
from tweenstream.runtime.persist import ModelFileError


@pytest.mark.parametrize("mode", ["backprop", "tween", "tween-heuristic", "hybrid"])
def test_save_load_continue_equals_uninterrupted(net_a, tmp_path, mode):
    X, y = quadrant_data(4_000, seed=3)
    straight = Learner(net_a, mode=mode, seed=2, switch_after=1_500, batch_size=3)
    straight.learn_many(X, y)

    stopped = Learner(net_a, mode=mode, seed=2, switch_after=1_500, batch_size=3)
    stopped.learn_many(X[:1_001], y[:1_001])  # stops mid-batch, before the switch
    stopped.save(tmp_path / "m.tsm")
    resumed = load(tmp_path / "m.tsm")
    resumed.learn_many(X[1_001:], y[1_001:])

    for name, arr in straight._arrays().items():
        assert np.array_equal(arr, resumed._arrays()[name]), name
    assert resumed.state() == straight.state()
    assert resumed._rng.bit_generator.state == straight._rng.bit_generator.state


def test_round_trip_keeps_features_and_config(tmp_path):
    model = Learner(Network(2, [Dense(3)]), mode="backprop", learning_rate=0.2, seed=7)
    model.learn_one({"u": 1.0, "v": -1.0}, 2)
    model.save(tmp_path / "m.tsm")
    again = Learner.load(tmp_path / "m.tsm")
    assert again.features == model.features and again.config == model.config and again.seed == 7
    assert sorted(k for k, _ in again.features) == ["u", "v"] and again.classes == [2]
    assert again.predict_proba_one({"v": -1.0, "u": 1.0}) == model.predict_proba_one(
        {"u": 1.0, "v": -1.0})


def test_save_is_atomic_and_leaves_no_temp_files(net_a, tmp_path):
    path = tmp_path / "m.tsm"
    Learner(net_a).save(path)
    Learner(net_a, seed=1).save(path)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tsm"]
    assert np.array_equal(load(path).arena.params, Learner(net_a, seed=1).arena.params)


def _rewrite(path, change):
    with zipfile.ZipFile(path) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    change(files)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())


def _manifest(change):
    def edit(files):
        m = json.loads(files["manifest.json"])
        change(m)
        files["manifest.json"] = json.dumps(m).encode()
    return edit


def _flip_weight_byte(files):
    raw = bytearray(files["pbuf.npy"])
    raw[-5] ^= 0xFF
    files["pbuf.npy"] = bytes(raw)


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:-200]), r"not a readable model file \(truncated"),
    (lambda p: p.write_bytes(b"garbage" * 50), r"not a readable model file"),
    (lambda p: p.write_bytes(b""), r"not a readable model file"),
    (lambda p: _rewrite(p, _flip_weight_byte), r"array 'pbuf' fails its checksum"),
    (lambda p: _rewrite(p, lambda f: f.pop("ist.npy")), r"array 'ist' is missing"),
    (lambda p: _rewrite(p, lambda f: f.pop("manifest.json")), r"no manifest.json"),
    (lambda p: _rewrite(p, lambda f: f.update({"manifest.json": b"{nope"})),
     r"manifest is not valid JSON"),
    (lambda p: _rewrite(p, _manifest(lambda m: m.update(format_version=99))),
     r"format version 99 is not supported by this tweenstream \(reads up to 4\)"),
    (lambda p: _rewrite(p, _manifest(lambda m: m.update(format="other"))),
     r"not a tweenstream model file"),
    (lambda p: _rewrite(p, _manifest(lambda m: m["network"]["layers"][0].update(units=33))),
     r"array 'pbuf' does not match the network"),
    (lambda p: _rewrite(p, _manifest(lambda m: m["config"].update(mode="sgd"))),
     r"invalid model description: mode must be one of"),
])
def test_damaged_files_raise_clear_errors(net_a, tmp_path, damage, message):
    path = tmp_path / "m.tsm"
    Learner(net_a).save(path)
    damage(path)
    with pytest.raises(ModelFileError, match=message):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"no such model file"):
        load(tmp_path / "absent.tsm")


def _same_state(old, resumed):
    """The saved arrays and the loaded ones are equal, except the loss at the shadow copy,
    which files before version 4 do not have: it loads as unknown (inf)."""
    assert resumed.arena.fst[layout.S_SHADOW_LOSS] == np.inf
    for name, arr in old._arrays().items():
        got = resumed._arrays()[name]
        if name == "fst":
            arr, got = np.delete(arr, layout.S_SHADOW_LOSS), np.delete(got, layout.S_SHADOW_LOSS)
        assert np.array_equal(arr, got), name


def _as_version_3(files):
    """Rewrite a model file as tweenstream wrote it before the storm counters: format version
    3, no counters after the event ring of ist, no rate ceiling in fst."""
    _as_older(files, 3, (), (("ist", lambda a: a[:layout.N_SNAP_ROLLBACKS]),
                             ("fst", lambda a: a[:layout.S_SHADOW_LOSS])))


def _as_version_2(files):
    """Rewrite a model file as tweenstream wrote it before ``diagnostics_every``: format
    version 2, no ist[N_DIAG_AT], no such setting."""
    _as_version_3(files)
    _as_older(files, 2, ("diagnostics_every",),
              (("ist", lambda a: np.delete(a, layout.N_DIAG_AT)),))


def _as_version_1(files):
    """Rewrite a model file as tweenstream wrote it before adam/adagrad: format version 1, a
    4-row pbuf (no P_SQ), no ist[N_OPT_STEP], and a config without the optimiser fields."""
    _as_version_2(files)
    _as_older(files, 1, ("optimizer", "beta1", "beta2", "epsilon"),
              (("pbuf", lambda a: np.delete(a, layout.P_SQ, axis=0)),
               ("ist", lambda a: np.delete(a, layout.N_OPT_STEP))))


def _as_older(files, version, settings, drops):
    m = json.loads(files["manifest.json"])
    m["format_version"] = version
    for name in settings:
        del m["config"][name]
    for name, drop in drops:
        arr = drop(np.lib.format.read_array(io.BytesIO(files[f"{name}.npy"])))
        npy = io.BytesIO()
        np.lib.format.write_array(npy, arr)
        files[f"{name}.npy"] = npy.getvalue()
        m["arrays"][name].update(shape=list(arr.shape),
                                 sha256=hashlib.sha256(arr.tobytes()).hexdigest())
    files["manifest.json"] = json.dumps(m).encode()


@pytest.mark.parametrize("mode", ["backprop", "hybrid"])
def test_files_from_before_the_adaptive_optimisers_load(net_a, tmp_path, mode):
    X, y = quadrant_data(3_000, seed=4)
    # the only optimiser of version 1; diagnostics on every sample, as before version 3
    was = {"optimizer": "sgd", "learning_rate": 0.01, "diagnostics_every": 1}
    straight = Learner(net_a, mode=mode, seed=2, switch_after=500, batch_size=2, **was)
    straight.learn_many(X, y)
    old = Learner(net_a, mode=mode, seed=2, switch_after=500, batch_size=2, **was)
    old.learn_many(X[:1_001], y[:1_001])
    path = tmp_path / "old.tsm"
    old.save(path)
    _rewrite(path, _as_version_1)
    with zipfile.ZipFile(path) as zf:  # the file really has the old layout
        pbuf = np.lib.format.read_array(io.BytesIO(zf.read("pbuf.npy")))
        assert pbuf.shape[0] == layout.NPROW - 1
    resumed = load(path)
    assert resumed.config == old.config and resumed.config.optimizer == "sgd"
    _same_state(old, resumed)
    assert not resumed.arena.pbuf[layout.P_SQ].any()
    resumed.learn_many(X[1_001:], y[1_001:])
    for name, arr in straight._arrays().items():
        assert np.array_equal(arr, resumed._arrays()[name]), name


def _resume_older(net_a, tmp_path, mode, version, rewrite, settings, cut, array, size):
    """Learn 2,000 samples straight; and the same with a stop at ``cut``, saved, rewritten as
    an older ``version`` file (``array`` of ``size`` values), loaded and continued: the loaded
    state is the saved one, and both end bit-identical. Returns the loaded learner."""
    X, y = quadrant_data(2_000, seed=version + 3)
    straight = Learner(net_a, mode=mode, seed=version + 1, **settings)
    straight.learn_many(X, y)
    old = Learner(net_a, mode=mode, seed=version + 1, **settings)
    old.learn_many(X[:cut], y[:cut])
    path = tmp_path / "old.tsm"
    old.save(path)
    _rewrite(path, rewrite)
    with zipfile.ZipFile(path) as zf:  # the file really has the old layout
        assert json.loads(zf.read("manifest.json"))["format_version"] == version
        assert np.lib.format.read_array(io.BytesIO(zf.read(f"{array}.npy"))).shape[0] == size
    resumed = load(path)
    loaded = resumed.state()
    _same_state(old, resumed)
    resumed.learn_many(X[cut:], y[cut:])
    for name, arr in straight._arrays().items():
        assert np.array_equal(arr, resumed._arrays()[name]), name
    return loaded, resumed


@pytest.mark.parametrize("mode", ["backprop", "tween"])
def test_version_2_files_load_with_diagnostics_on_every_sample(net_a, tmp_path, mode):
    st, resumed = _resume_older(net_a, tmp_path, mode, 2, _as_version_2,
                                {"diagnostics_every": 1}, 777, "ist", layout.NIST - 5)
    assert resumed.config.diagnostics_every == 1 and st["diagnostics_at"] == 777


@pytest.mark.parametrize("mode", ["tween", "hybrid"])
def test_version_3_files_load_without_storm_counters(net_a, tmp_path, mode):
    st, _ = _resume_older(net_a, tmp_path, mode, 3, _as_version_3, {"switch_after": 900}, 600,
                          "fst", layout.NFST - 1)
    assert (st["storms"], st["rollbacks_to_snapshot"], st["rate_ceiling"]) == (0, 0, 1.0)


def test_a_current_file_with_the_old_layout_is_refused(net_a, tmp_path):
    path = tmp_path / "m.tsm"
    Learner(net_a).save(path)

    def strip_row(files):
        _as_version_1(files)
        _manifest(lambda m: m.update(format_version=2))(files)

    _rewrite(path, strip_row)
    with pytest.raises(ModelFileError, match=r"array 'pbuf' does not match the network"):
        load(path)


def test_a_hybrid_saved_before_the_race_keeps_its_plateau_trigger(net_a, tmp_path):
    """A file without ``hybrid_switch`` comes from before the race existed: its learner goes on
    with the trigger it was saved with, as it would have without the save."""
    X, y = quadrant_data(3_000, seed=6)
    straight = Learner(net_a, mode="hybrid", seed=1, hybrid_switch="plateau", plateau_window=500)
    straight.learn_many(X, y)
    old = Learner(net_a, mode="hybrid", seed=1, hybrid_switch="plateau", plateau_window=500)
    old.learn_many(X[:1_200], y[:1_200])
    path = tmp_path / "old.tsm"
    old.save(path)

    def drop_race_settings(m):
        for name in ("hybrid_switch", "race_first", "race_length", "race_z"):
            del m["config"][name]
        del m["race"]

    _rewrite(path, _manifest(drop_race_settings))
    resumed = load(path)
    assert resumed.config.hybrid_switch == "plateau" and resumed.config.race_first == 1_000
    resumed.learn_many(X[1_200:], y[1_200:])
    assert np.array_equal(straight.arena.pbuf, resumed.arena.pbuf)
    assert resumed.state()["races"] == 0
