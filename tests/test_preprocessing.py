"""The model's input stage (dict slots, online standardisation, clip) and its class labels.

Checked against a plain oracle (tests/oracle/scaling.py), for key-order independence, features
that come and go, save/load, ONNX parity with the stage inside the graph, and that every bad
sample leaves the model, its slots and its label map byte-identical.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from oracle.scaling import ref_scale

from tweenstream import Dense, Learner, Network
from tweenstream.runtime.features import FeatureSlots
from tweenstream.runtime.labels import LabelMap
from tweenstream.runtime.scaling import Scaler

NET = Network(4, [Dense(8, "tanh"), Dense(3)])


def _snapshot(model: Learner) -> tuple:
    arrays = {k: v.copy() for k, v in model._arrays().items()}
    return arrays, copy.deepcopy(model.features), copy.deepcopy(model.classes)


def _same(model: Learner, snap: tuple) -> None:
    arrays, features, classes = snap
    for k, v in model._arrays().items():
        assert v.tobytes() == arrays[k].tobytes(), k
    assert model.features == features
    assert model.classes == classes


# --- the scaling kernel against its oracle --------------------------------------------------
@pytest.mark.parametrize("clip", [8.0, 2.0])
def test_scaler_matches_oracle_row_by_row_and_in_batches(clip):
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, (300, 5)) * np.array([1, 10, 0.01, 1e4, 1])
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values
    X[:, 4] = 7.0  # a constant feature
    X[200, 0] = 1e12  # an absurd value: clipped in the statistics after warm-up
    ref_z, st = ref_scale(X, clip)
    one, batch = Scaler(5, clip, None), Scaler(5, clip, None)
    z1 = np.zeros((1, 5), np.float32)
    comp_one = np.zeros_like(ref_z)
    for r in range(len(X)):
        assert one.apply(X[r:r + 1], z1, learn=True, missing_ok=True) == -1
        comp_one[r] = z1[0]
    comp_batch = np.zeros_like(ref_z)
    assert batch.apply(X, comp_batch, learn=True, missing_ok=True) == -1
    np.testing.assert_array_equal(comp_one, ref_z)
    np.testing.assert_array_equal(comp_batch, ref_z)
    np.testing.assert_allclose(one.mean, st["mean"], rtol=1e-12)
    assert np.abs(ref_z).max() <= clip
    assert abs(one.mean[0]) < 100  # the absurd value did not drag the mean


def test_scaler_freeze_and_fixed_statistics():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2))
    sc = Scaler(2, 8.0, freeze_after=10)
    out = np.zeros((50, 2), np.float32)
    sc.apply(X, out, learn=True)
    ref, _ = ref_scale(X, 8.0, freeze_after=10)
    np.testing.assert_array_equal(out, ref)
    assert int(sc.seen[0]) == 10
    sc.set([1.0, 2.0], [2.0, 4.0])
    sc.apply(np.array([[3.0, 6.0]]), out[:1], learn=True)
    assert out[0].tolist() == [1.0, 1.0] and sc.fixed
    with pytest.raises(ValueError, match="std finite and > 0"):
        sc.set([0.0, 0.0], [1.0, 0.0])


def test_unusable_rows_change_nothing():
    sc = Scaler(2, 8.0, None)
    out = np.zeros((2, 2), np.float32)
    for bad in ([[1.0, 2.0], [np.inf, 0.0]], [[1.0, np.nan], [0.0, 0.0]]):
        assert sc.apply(np.array(bad), out, learn=True) >= 0
        assert sc.seen[0] == 0 and not sc.stats.any()
    assert sc.apply(np.array([[1.0, 2.0], [np.nan, 0.0]]), out, learn=True, missing_ok=True) \
        == -1


# --- dict features ------------------------------------------------------------------------
def _dict_stream(n: int, seed: int) -> tuple[list[dict], list[str]]:
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for _ in range(n):
        a, b = rng.normal(100, 20), rng.normal(0, 0.01)
        row = {"a": a, 7: b, "colour": "red" if a > 100 else "blue"}
        if rng.random() < 0.2:
            row.pop(7)  # a feature that comes and goes
        rows.append(row)
        labels.append("high" if a + 2000 * b > 100 else "low")
    return rows, labels


def test_dict_key_order_gives_the_same_model():
    rows, labels = _dict_stream(400, 2)
    m1, m2 = Learner(NET, seed=3), Learner(NET, seed=3)
    rng = np.random.default_rng(0)
    for row, y in zip(rows, labels, strict=True):
        m1.learn_one(row, y)
        keys = list(row)
        rng.shuffle(keys)
        m2.learn_one({k: row[k] for k in keys}, y)
    np.testing.assert_array_equal(m1.arena.params, m2.arena.params)
    assert sorted(map(str, m1.features)) == sorted(map(str, m2.features))
    assert m1.state()["prequential_accuracy"] > 0.8


def test_dict_learn_many_equals_learn_one():
    rows, labels = _dict_stream(300, 4)
    m1, m2 = Learner(NET, seed=1), Learner(NET, seed=1)
    for row, y in zip(rows, labels, strict=True):
        m1.learn_one(row, y)
    m2.learn_many(rows, labels)
    np.testing.assert_array_equal(m1.arena.params, m2.arena.params)
    assert m1.features == m2.features and m1.classes == m2.classes


def test_missing_features_read_as_the_mean_and_new_ones_take_free_slots():
    model = Learner(Network(3, [Dense(2)]), seed=0)
    for v in (1.0, 3.0):
        model.learn_one({"a": v, "b": 10 * v}, 0)
    z = model._input.one({"b": 30.0}, learn=False)  # 'a' missing: z = 0
    assert z[0, model._input.slots.slots["a"]] == 0.0
    model.learn_one({"a": 2.0, "new": 5.0}, 1)
    assert {k for k, _ in model.features} == {"a", "b", "new"}


def test_more_keys_than_slots_share_slots_by_hash():
    fs = FeatureSlots(2)
    raw = np.zeros(2)
    fs.commit(fs.read({"a": 1.0, "b": 2.0, "c": 4.0}, raw))
    assert len(fs.slots) == 2 and np.nansum(raw) == 7.0
    again = np.zeros(2)
    assert fs.read({"c": 4.0, "a": 1.0, "b": 2.0}, again) == []
    np.testing.assert_array_equal(raw, again)


def test_bad_dicts_change_nothing_and_fix_no_names():
    model = Learner(NET, seed=0)
    snap = _snapshot(model)
    bad = [({"a": float("nan")}, "x", ValueError), ({"a": [1]}, "x", TypeError),
           ({1.5: 2.0}, "x", TypeError), ({True: 2.0}, "x", TypeError),
           ({"a": 10**400}, "x", ValueError), ({"a": 1.0}, 2.5, TypeError)]
    for x, y, err in bad:
        with pytest.raises(err):
            model.learn_one(x, y)
        _same(model, snap)
    with pytest.raises(ValueError, match="row 1"):
        model.learn_many([{"a": 1.0}, {"a": float("inf")}], ["x", "y"])
    _same(model, snap)
    with pytest.raises(TypeError):
        model.learn_many([{"a": 1.0}, {"b": 2.0}], ["x", 1.5])
    _same(model, snap)


# --- labels -------------------------------------------------------------------------------
def test_any_labels_are_returned_as_given():
    X = np.random.default_rng(5).normal(size=(2000, 4)).astype(np.float32)
    for kind in (lambda v: "spam" if v else "ham", bool, lambda v: 40 + int(v)):
        Y = [kind(v) for v in X[:, 0] > 0]
        model = Learner(NET, seed=0, mode="backprop")
        model.learn_many(X, Y)
        assert set(model.classes) == set(Y)
        assert model.predict_one(X[0]) == Y[0]
        assert set(model.predict_proba_one(X[0])) == set(Y)
        assert list(model.predict_many(X[:50])) == Y[:50] or \
            np.mean(np.asarray(model.predict_many(X[:500])) == np.asarray(Y[:500])) > 0.9


def test_only_seen_classes_are_predicted_and_capacity_is_checked():
    model = Learner(NET, seed=0)
    assert model.predict_one(np.zeros(4)) is None and model.predict_proba_one(np.zeros(4)) == {}
    model.learn_one(np.ones(4), "b")
    assert model.predict_one(np.zeros(4)) == "b"
    assert model.predict_proba_one(np.zeros(4)) == {"b": 1.0}
    model.learn_one(np.ones(4), "a")
    model.learn_one(np.ones(4), True)  # a third class: True is not 1
    snap = _snapshot(model)
    with pytest.raises(ValueError, match="3 outputs"):
        model.learn_one(np.ones(4), "d")
    _same(model, snap)
    with pytest.raises(ValueError, match="3 outputs"):
        model.learn_many(np.ones((2, 4)), ["a", "d"])
    _same(model, snap)


def test_int_labels_keep_their_units():
    labels = LabelMap(3)
    labels.commit(labels.plan([2, 0]))
    assert labels.index(2) == 2 and labels.index(0) == 0
    labels.commit(labels.plan(["x"]))
    assert labels.index("x") == 1
    assert LabelMap.from_list(labels.to_list(), 3).classes == labels.classes


# --- files and export ---------------------------------------------------------------------
def test_save_load_keeps_stage_slots_and_labels(tmp_path):
    rows, labels = _dict_stream(200, 6)
    model = Learner(NET, seed=2)
    model.learn_many(rows, labels)
    model.save(tmp_path / "m.tsm")
    back = Learner.load(tmp_path / "m.tsm")
    assert back.features == model.features and back.classes == model.classes
    np.testing.assert_array_equal(back.scaler.stats, model.scaler.stats)
    more, more_y = _dict_stream(50, 7)
    model.learn_many(more, more_y)
    back.learn_many(more, more_y)
    np.testing.assert_array_equal(back.arena.params, model.arena.params)
    assert back.predict_one(more[0]) == model.predict_one(more[0])


def test_onnx_parity_includes_the_input_stage(tmp_path):
    from tweenstream.export import builder
    from tweenstream.export.format import META_CLASSES, metadata, session

    rng = np.random.default_rng(8)
    X = (rng.normal(size=(500, 4)) * [1, 100, 1e-3, 1e3] + [0, 50, 0, 1e4]).astype(np.float32)
    model = Learner(NET, seed=0)
    model.learn_many(X, np.where(X[:, 1] > 50, "up", "down"))
    onnx_model = builder.build_model(model)
    got = session(onnx_model).run(None, {"input": X})[0]
    np.testing.assert_allclose(got, model.predict_proba_many(X), atol=1e-6)
    assert metadata(onnx_model)[META_CLASSES] in ('["up", "down", null]', '["down", "up", null]')
    report = builder.export(model, tmp_path / "m.onnx", recorded=X[:64])
    assert report["parity"]["passed"]


def test_huge_inputs_are_clipped_not_learned_from():
    X = np.random.default_rng(9).normal(size=(3000, 4)).astype(np.float32)
    Y = (X[:, 0] > 0).astype(np.int64)
    X[1500] = 1e30
    model = Learner(NET, seed=0, mode="backprop")
    model.learn_many(X, Y)
    state = model.state()
    assert state["explosions"] == 0 and state["prequential_accuracy"] > 0.85


# --- regression targets -------------------------------------------------------------------
def test_target_rows_match_the_oracle():
    rng = np.random.default_rng(10)
    Y = rng.normal(500.0, 80.0, (200, 2))
    sc = Scaler(2, 8.0, None)
    out = np.zeros((200, 8), np.float32)
    sc.targets(Y, out, learn=True)
    ref_z, st = ref_scale(Y, 8.0)
    np.testing.assert_array_equal(out[:, :2], ref_z)
    np.testing.assert_array_equal(out[:, 2:4], Y.astype(np.float32))
    np.testing.assert_allclose(sc.mean, st["mean"], rtol=1e-12)
    # the std and mean columns are those each row was scaled with (before counting it)
    np.testing.assert_allclose(out[100, 6:8], np.mean(Y[:100], axis=0), rtol=1e-6)
    np.testing.assert_allclose(out[100, 4:6], np.std(Y[:100], axis=0), rtol=1e-5)


def test_regression_learns_in_the_targets_units_and_exports_them(tmp_path):
    from tweenstream.export import builder
    from tweenstream.export.format import session

    rng = np.random.default_rng(11)
    X = rng.normal(size=(4000, 3))
    y = 1000 + 300 * np.sin(X[:, 0]) + 50 * X[:, 1]
    net = Network(3, [Dense(32, "tanh"), Dense(1)], task="regression")
    scaled = Learner(net, mode="backprop", seed=0)
    raw = Learner(net, mode="backprop", seed=0, target_scaling="off")
    for m in (scaled, raw):
        m.learn_many(X[:2000], y[:2000])
        for i in range(2000, 2100):
            m.learn_one(X[i], y[i])
    assert scaled.state()["prequential_mae"] < 0.2 * raw.state()["prequential_mae"]
    # the counters score the prediction made before learning, in the targets' units
    before = scaled.totals()
    guess = scaled.predict_one(X[2100])
    scaled.learn_one(X[2100], y[2100])
    assert abs((scaled.totals()[1] - before[1]) - abs(guess - y[2100])) < 1e-3
    got = session(builder.build_model(scaled)).run(None, {"input": X[:64].astype(np.float32)})
    np.testing.assert_allclose(got[0][:, 0], scaled.predict_many(X[:64].astype(np.float32)),
                               rtol=1e-6)
    scaled.save(tmp_path / "r.tsm")
    back = Learner.load(tmp_path / "r.tsm")
    assert back.predict_one(X[5]) == scaled.predict_one(X[5])
    snap = _snapshot(scaled)
    with pytest.raises(ValueError, match="row 1: y has NaN or inf"):
        scaled.learn_many(X[:2], [1.0, float("nan")])
    _same(scaled, snap)
