"""Regression tests for defects found in review of the engine core."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from helpers import quadrant_data

from tweenstream import Dense, Learner, Network, load
from tweenstream.runtime import layout
from tweenstream.runtime.persist import ModelFileError, _digest


@pytest.mark.parametrize("mode", ["backprop", "tween"])
def test_bad_first_sample_does_not_break_the_soft_detector(net_a, mode):
    model = Learner(net_a, mode=mode, seed=0)
    X, y = quadrant_data(1, seed=0)
    X[0, 0] = np.nan
    model.engine.learn_many(*model._args, X, y, model._yr1, False)
    assert model.state()["explosions"] == 1
    model.learn_many(*quadrant_data(60_000, seed=1))
    assert model.state()["explosions"] == 1  # no false triggers afterwards
    assert model.arena.fst[layout.S_SLOW] > 0


def test_manual_phase_on_a_hybrid_learner_sticks(net_a):
    model = Learner(net_a, mode="hybrid", seed=0, switch_after=100)
    model.learn_many(*quadrant_data(200, seed=0))
    assert model.state()["phase"] == "backprop"
    model.set_phase("tween")
    model.learn_many(*quadrant_data(300, seed=1))
    assert model.state()["phase"] == "tween"
    model.set_phase("hybrid")  # re-arms the schedule: switch_after has passed, so it switches
    assert model.state()["switched_at"] is None
    model.learn_many(*quadrant_data(1, seed=2))
    assert model.state()["phase"] == "backprop" and model.state()["switched_at"] == 501


def test_heuristic_batch_does_not_roll_back_on_a_bad_output():
    net = Network(8, [Dense(32, "relu"), Dense(32, "relu"), Dense(4)])  # relu passes 3e38 on
    model = Learner(net, mode="tween-heuristic", seed=0, batch_size=4, scaling="off")
    model.learn_many(*quadrant_data(500, seed=0))
    params = model.arena.params.copy()
    X, y = quadrant_data(1, seed=1)
    X[0, 0] = 3e38  # finite, but the output overflows
    model.engine.learn_many(*model._args, X, y, model._yr1, False)
    st = model.state()
    assert st["explosions"] == 1 and st["rollbacks"] == 0
    assert np.array_equal(params, model.arena.params)


def test_read_only_inputs_do_not_compile_again(net_a):
    model = Learner(net_a, seed=0)
    X, y = quadrant_data(10, seed=0)
    model.learn_many(X, y)
    model.predict_many(X)
    engine = model.engine
    before = (len(engine.learn_many.signatures), len(engine.predict_many.signatures))
    X.flags.writeable = False
    y.flags.writeable = False
    model.learn_many(X, y)
    model.learn_one(X[0], 1)
    model.predict_many(X)
    after = (len(engine.learn_many.signatures), len(engine.predict_many.signatures))
    assert after == before


def test_a_bad_first_dict_gives_no_feature_a_slot():
    model = Learner(Network(2, [Dense(2)]), scaling="off")
    with pytest.raises(TypeError, match="feature 'a' must be a real number"):
        model.learn_one({"a": [1.0], "b": 1.0}, 0)
    assert model.features == []
    model.learn_one({"b": 1.0, "a": 2.0}, 0)
    assert sorted(k for k, _ in model.features) == ["a", "b"]
    with pytest.raises(ValueError, match=r"feature 'a' = 1000.* is beyond float64's range"):
        model.learn_one({"b": 1.0, "a": 10**400}, 0)
    with pytest.raises(ValueError, match=r"beyond float32's range"):  # unscaled, so refused
        model.learn_one({"b": 1.0, "a": 1e39}, 0)


def test_feature_names_are_str_or_int():
    model = Learner(Network(2, [Dense(2)]))
    model.learn_one({1: 1.0, "b": 1.0}, 0)
    assert sorted(map(str, (k for k, _ in model.features))) == ["1", "b"]
    for key in (1.5, True, None):
        with pytest.raises(TypeError, match=r"feature names must be str or int"):
            model.learn_one({key: 1.0}, 0)


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"recovery_rate": 0.5}, ValueError, r"recovery_rate must be >= 1 \(the rate climbs back\)"),
    ({"explosion_limit": 0.5}, ValueError, r"explosion_limit must be > 1, found 0.5"),
    ({"learning_rate": 1e39}, ValueError,
     r"learning_rate must be at most 1e\+30 \(the kernels compute in float32\)"),
    ({"weight_rate_multiplier": -0.1}, ValueError, r"weight_rate_multiplier must be >= 0"),
    ({"ignore_threshold": 1.5}, ValueError, r"ignore_threshold must be in \[0, 1\], found 1.5"),
    ({"batch_size": 2**70}, ValueError, r"batch_size must be at most 2147483647"),
    ({"tween_rate": "fast"}, TypeError, r"tween_rate must be a number, found str"),
    ({"rate_floor": 2.0}, ValueError, r"rate_floor must be <= 1, found 2.0"),
    ({"max_param_jump": 1.0}, ValueError, r"max_param_jump must be > 1, found 1.0"),
    ({"switch_after": 0}, ValueError, r"switch_after must be >= 1 or None, found 0"),
])
def test_more_config_errors(net_a, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        Learner(net_a, **kwargs)


def test_numpy_scalars_in_config_save(net_a, tmp_path):
    model = Learner(net_a, learning_rate=np.float32(0.05), batch_size=np.int64(2))
    assert type(model.config.learning_rate) is float and type(model.config.batch_size) is int
    model.save(tmp_path / "m.tsm")
    assert load(tmp_path / "m.tsm").config.batch_size == 2


def test_more_boundary_errors():
    model = Learner(Network(3, [Dense(2)], task="regression"))
    with pytest.raises(TypeError, match=r"X must hold real numbers, found dtype <U1"):
        model.learn_many(np.array([["a", "b", "c"]]), np.zeros((1, 2)))
    with pytest.raises(TypeError, match=r"predict_proba_many needs a classification network"):
        model.predict_proba_many(np.zeros((1, 3)))


def _edit(path, change_manifest=None, arrays=None):
    """Rewrite a model file, keeping checksums consistent (an edit, not damage)."""
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(files["manifest.json"])
    for name, arr in (arrays or {}).items():
        buf = io.BytesIO()
        np.lib.format.write_array(buf, arr)
        files[f"{name}.npy"] = buf.getvalue()
        manifest["arrays"][name]["sha256"] = _digest(arr)
    if change_manifest:
        change_manifest(manifest)
    files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)


def _ist_with(model, index, value):
    ist = model.arena.ist.copy()
    ist[index] = value
    return {"ist": ist}


@pytest.mark.parametrize("edit, message", [
    (lambda m: _ist_with(m, layout.N_EVENT_HEAD, 10**8), "out of range: event ring position"),
    (lambda m: _ist_with(m, layout.N_PHASE, 7), "out of range: phase"),
    (lambda m: _ist_with(m, layout.N_SEEN, -5), "negative counters"),
    (lambda m: {"fst": np.full_like(m.arena.fst, np.nan)}, "running statistics are not finite"),
    (lambda m: {"pbuf": np.full_like(m.arena.pbuf, np.inf)}, "parameters or momentum are not"),
])
def test_edited_state_is_refused(net_a, tmp_path, edit, message):
    model = Learner(net_a)
    model.learn_many(*quadrant_data(50, seed=0))
    path = tmp_path / "m.tsm"
    model.save(path)
    _edit(path, arrays=edit(model))
    with pytest.raises(ModelFileError, match=f"invalid learner state: {message}"):
        load(path)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(features=[["a", 99]]), r"feature entry \['a', 99\] is not \[name, slot\]"),
    (lambda m: m.pop("rng_state"), r"manifest lacks \['rng_state'\]"),
])
def test_edited_manifest_is_refused(net_a, tmp_path, change, message):
    path = tmp_path / "m.tsm"
    Learner(net_a).save(path)
    _edit(path, change_manifest=change)
    with pytest.raises(ModelFileError, match=message):
        load(path)


def test_unreadable_array_and_huge_manifest(net_a, tmp_path):
    path = tmp_path / "m.tsm"
    Learner(net_a).save(path)
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    files["ist.npy"] = b"\x93NUMPY garbage"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    with pytest.raises(ModelFileError, match=r"array 'ist' is unreadable"):
        load(path)
    files["manifest.json"] = b" " * (2 << 20)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    with pytest.raises(ModelFileError, match=r"manifest is \d+ bytes, over the limit"):
        load(path)
