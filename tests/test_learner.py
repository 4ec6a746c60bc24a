"""Learner API: the River-style calls, dict inputs, and every boundary error message."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import quadrant_data

from tweenstream import Dense, Learner, Network, TweenConfig

MODES = ["backprop", "tween", "tween-heuristic", "hybrid"]


@pytest.fixture
def model(net_a):
    return Learner(net_a, mode="tween", seed=3)


@pytest.mark.parametrize("mode", MODES)
def test_learns_the_quadrant_task(net_a, mode):
    X, y = quadrant_data(20_000, seed=1)
    model = Learner(net_a, mode=mode, seed=0)
    model.learn_many(X, y)
    Xt, yt = quadrant_data(2_000, seed=2)
    accuracy = float((model.predict_many(Xt) == yt).mean())
    floor = 0.85 if mode == "tween-heuristic" else 0.9
    assert accuracy > floor, accuracy
    assert model.state()["explosions"] == 0


def test_predictions_agree_across_forms(model):
    Xl, yl = quadrant_data(2_000, seed=5)
    model.learn_many(Xl, yl)
    X, _ = quadrant_data(50, seed=4)
    proba = model.predict_proba_many(X)
    assert proba.shape == (50, 4) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert np.array_equal(model.predict_many(X), proba.argmax(axis=1))
    one = model.predict_proba_one(X[7])
    assert list(one) == [0, 1, 2, 3]
    assert np.allclose(list(one.values()), proba[7], atol=1e-7)
    assert model.predict_one(X[7]) == int(proba[7].argmax())
    assert model.predict_one(X[7].tolist()) == model.predict_one(X[7].astype(np.float64))


def test_learn_one_equals_learn_many(net_a):
    X, y = quadrant_data(300, seed=5)
    a, b = Learner(net_a, seed=9), Learner(net_a, seed=9)
    for xi, yi in zip(X, y, strict=True):
        a.learn_one(xi, int(yi))
    b.learn_many(X, y)
    assert np.array_equal(a.arena.params, b.arena.params)
    assert a.state() == b.state()


def test_regression():
    net = Network(3, [Dense(16, "tanh"), Dense(2)], task="regression")
    model = Learner(net, mode="backprop", seed=0)
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (20_000, 3)).astype(np.float32)
    Y = np.stack([X[:, 0] * X[:, 1], np.sin(2 * X[:, 2])], axis=1)
    model.learn_many(X, Y)
    constant_mae = float(np.abs(Y - Y.mean(axis=0)).mean())  # best constant predictor, ~0.35
    assert model.state()["running_mae"] < 0.3 * constant_mae
    pred = model.predict_many(X[:5])
    assert pred.shape == (5, 2)
    assert np.allclose(model.predict_one(X[0]), pred[0])
    single = Learner(Network(3, [Dense(1)], task="regression"))
    single.learn_one(X[0], 0.5)
    assert isinstance(single.predict_one(X[0]), float)
    assert single.predict_many(X[:4]).shape == (4,)


def test_dict_features_take_slots_whatever_their_order():
    model = Learner(Network(3, [Dense(2)]), seed=0)
    model.learn_one({"b": 1.0, "a": 2.0, "c": 3.0}, 1)
    slots = {k: s for k, s in model.features}
    assert sorted(slots) == ["a", "b", "c"] and sorted(slots.values()) == [0, 1, 2]
    vec = np.zeros(3, np.float32)
    for k, v in {"a": 2.0, "b": 1.0, "c": 3.0}.items():
        vec[slots[k]] = v
    assert model.predict_proba_one({"a": 2.0, "c": 3.0, "b": 1.0}) == model.predict_proba_one(vec)
    model.learn_many([{"a": 0.0, "b": 1.0, "c": 0.5}] * 3, [0, 0, 0])
    assert model.state()["samples_seen"] == 4


@pytest.mark.parametrize("x, exc, message", [
    ({"b": 1.0, "a": [2.0], "c": 3.0}, TypeError,
     r"feature 'a' must be a real number, a str \(a category\) or None \(missing\), found list"),
    ({"b": 1.0, "a": float("nan")}, ValueError,
     r"feature 'a' = nan is not finite; drop the feature \(a missing feature is None or absent\)"),
    ({2.5: 1.0}, TypeError, r"feature names must be str or int, found float 2.5"),
])
def test_dict_errors_name_the_fix(x, exc, message):
    model = Learner(Network(3, [Dense(2)]), seed=0)
    model.learn_one({"b": 1.0, "a": 2.0, "c": 3.0}, 1)
    before = [a.copy() for a in model._arrays().values()]
    features = model.features
    with pytest.raises(exc, match=message):
        model.learn_one(x, 0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model._arrays().values(), strict=True))
    assert model.features == features


@pytest.mark.parametrize("x, y, exc, message", [
    (np.zeros(7, np.float32), 0, ValueError,
     r"x must have shape \(8,\), found \(7,\); pass one sample as a flat vector"),
    (np.zeros((1, 8), np.float32), 0, ValueError, r"x must have shape \(8,\), found \(1, 8\)"),
    (np.array(["a"] * 8), 0, TypeError, r"x must hold real numbers, found dtype <U1"),
    ("abcdefgh", 0, TypeError, r"x must be a 1-D array of 8 floats or a dict of features"),
    (np.zeros(8, np.float32), 4, ValueError,
     r"label 4 would be class 5, but the network has 4 outputs and holds \[0, 1, 2, 3\]; "
     r"nothing was learned"),
    (np.zeros(8, np.float32), -1, ValueError, r"label -1 would be class 5"),
    (np.zeros(8, np.float32), 1.0, TypeError,
     r"a class label must be an int, str or bool, found float 1.0"),
    (np.zeros(8, np.float32), True, ValueError, r"label True would be class 5"),
    (np.array([0, 0, np.nan, 0, 0, 0, 0, 0], np.float32), 1, ValueError,
     r"x has NaN or inf \(or a value beyond float32's range, about 3.4e38\); "
     r"nothing was learned"),
    (np.array([0, 0, np.inf, 0, 0, 0, 0, 0], np.float32), 1, ValueError,
     r"x has NaN or inf"),
])
def test_learn_one_errors_change_nothing(model, x, y, exc, message):
    model.learn_many(*quadrant_data(100, seed=0))
    before = [a.copy() for a in model._arrays().values()]
    with pytest.raises(exc, match=message):
        model.learn_one(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(before, model._arrays().values(), strict=True))


@pytest.mark.parametrize("X, Y, exc, message", [
    (np.zeros((5, 7)), np.zeros(5, int), ValueError,
     r"X must have shape \(n, 8\), found \(5, 7\); one row per sample"),
    (np.zeros((5, 8)), np.zeros(4, int), ValueError,
     r"Y must have shape \(5,\) to match X, found \(4,\)"),
    (np.zeros((5, 8)), np.zeros(5), TypeError,
     r"class labels must be int, str or bool, found dtype float64"),
    (np.zeros((5, 8)), np.array([0, 1, 2, 9, 7]), ValueError,
     r"label 7 would be class 5, but the network has 4 outputs and holds \[0, 1, 2, 9\]"),
    (np.where(np.arange(40).reshape(5, 8) == 20, np.nan, 0.0), np.zeros(5, int), ValueError,
     r"row 2: X has NaN or inf; nothing was learned"),
    (3, np.zeros(5, int), TypeError, r"X must be a 2-D array \(n, 8\) or a list of dicts"),
])
def test_learn_many_errors_change_nothing(model, X, Y, exc, message):
    before = [a.copy() for a in model._arrays().values()]
    with pytest.raises(exc, match=message):
        model.learn_many(X, Y)
    assert all(np.array_equal(a, b) for a, b in zip(before, model._arrays().values(), strict=True))


def test_regression_target_errors():
    model = Learner(Network(3, [Dense(2)], task="regression"))
    with pytest.raises(ValueError, match=r"y must be a vector of 2 numbers, found shape \(3,\)"):
        model.learn_one(np.zeros(3, np.float32), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"y must be a vector of 2 numbers, found shape \(2, 2\)"):
        model.learn_one(np.zeros(3, np.float32), np.zeros((2, 2)))
    with pytest.raises(TypeError, match=r"y must hold real numbers, found booleans"):
        model.learn_one(np.zeros(3, np.float32), [True, False])
    with pytest.raises(ValueError, match=r"row 1: y has NaN or inf; nothing was learned"):
        model.learn_many(np.zeros((2, 3)), np.array([[0.0, 0.0], [np.inf, 0.0]]))
    with pytest.raises(TypeError, match=r"predict_proba_one needs a classification network"):
        model.predict_proba_one(np.zeros(3, np.float32))


def test_predict_rejects_non_finite(model):
    with pytest.raises(ValueError, match=r"rows \[1\] of X have NaN or inf \(or values beyond "
                       r"float32's range\); clean them before predicting"):
        model.predict_many(np.array([[0.0] * 8, [np.nan] * 8]))


def test_predict_blames_the_model_when_inputs_are_finite(net_a):
    model = Learner(net_a, seed=3, scaling="off")  # scaled inputs of ones would be zeros
    model.arena.layer_params(2)["b"][:] = np.float32(3e38)  # logits overflow in the softmax
    model.arena.layer_params(2)["W"][:] = np.float32(3e38)
    with pytest.raises(FloatingPointError, match=r"the model's output is not finite for rows "
                       r"\[0\] \(finite inputs\): its weights overflow on them"):
        model.predict_many(np.ones((1, 8), np.float32))


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"mode": "sgd"}, ValueError,
     r"mode must be one of backprop, tween, tween-heuristic, hybrid, found 'sgd'"),
    ({"learning_rate": 0.0}, ValueError, r"learning_rate must be > 0, found 0.0"),
    ({"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\), found 1.0"),
    ({"batch_size": 0}, ValueError, r"batch_size must be >= 1, found 0"),
    ({"batch_size": 2.5}, TypeError, r"batch_size must be an integer, found 2.5"),
    ({"tween_rate": float("nan")}, ValueError, r"tween_rate must be finite, found nan"),
    ({"chain_gate": 1}, TypeError, r"chain_gate must be True or False, found 1"),
    ({"grad_clip": -1.0}, ValueError, r"grad_clip must be > 0 or None, found -1.0"),
    ({"fast_window": 5000}, ValueError, r"fast_window \(5000\) must be smaller than slow_window"),
    ({"learning_rte": 0.1}, TypeError, r"unknown setting\(s\) \['learning_rte'\]"),
    ({"seed": -1}, ValueError, r"seed must be a non-negative int, found -1"),
])
def test_config_errors(net_a, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        Learner(net_a, **kwargs)


def test_constructor_type_errors(net_a):
    with pytest.raises(TypeError, match=r"network must be a Network, found list"):
        Learner([Dense(2)])
    with pytest.raises(TypeError, match=r"config must be a TweenConfig, found dict"):
        Learner(net_a, {"mode": "tween"})


def test_configure_and_set_phase(model):
    model.configure(tween_rate=0.5)
    assert model.config.tween_rate == 0.5
    with pytest.raises(ValueError, match=r"changed with set_phase\(...\), not configure"):
        model.configure(mode="backprop")
    model.learn_many(*quadrant_data(200, seed=0))
    model.set_phase("backprop")
    assert model.state()["phase"] == "backprop" and not model.arena.pbuf[1].any()
    with pytest.raises(ValueError, match=r"phase must be one of backprop, tween, "
                       r"tween-heuristic, hybrid, found 'sgd'"):
        model.set_phase("sgd")
    with pytest.raises(ValueError, match=r"phase 'hybrid' needs a learner built with "
                       r"mode='hybrid'; this one has mode='tween'"):
        model.set_phase("hybrid")


def test_state_reports_everything(model):
    model.learn_many(*quadrant_data(500, seed=0))
    st = model.state()
    assert {"mode", "phase", "samples_seen", "updates", "adaptive_rate", "explosions",
            "rollbacks", "rejected", "samples_since_rollback", "running_loss", "running_accuracy",
            "prequential_accuracy", "switched_at", "recent_explosions", "layers",
            "gradient_warnings"} <= set(st)
    assert st["samples_seen"] == 500 and st["updates"] == 500
    assert [sorted(layer) for layer in st["layers"]] == [
        ["depth_barrier", "depth_scale", "gap", "grad_rms", "gradient", "kind",
         "link_budget", "type_rate"]] * 3
    assert [layer["depth_scale"] for layer in st["layers"]] == [1.0, 1.0, 1.0]
    assert [layer["type_rate"] for layer in st["layers"]] == [1.0, 1.0, 1.0]
    assert all(0.0 <= layer["link_budget"] <= 1.0 for layer in st["layers"])


def test_clone_is_fresh_unless_asked(model):
    model.learn_many(*quadrant_data(300, seed=0))
    fresh = model.clone()
    assert fresh.state()["samples_seen"] == 0 and fresh.config == model.config
    assert np.array_equal(fresh.arena.params, Learner(model.network, seed=3).arena.params)
    copy = model.clone(include_state=True)
    X, y = quadrant_data(300, seed=1)
    copy.learn_many(X, y)
    model.learn_many(X, y)
    assert np.array_equal(copy.arena.params, model.arena.params)


def test_config_object_and_overrides(net_a):
    cfg = TweenConfig(mode="backprop", learning_rate=0.05)
    model = Learner(net_a, cfg, momentum=0.5)
    assert model.config.learning_rate == 0.05 and model.config.momentum == 0.5


def test_values_beyond_float32_are_refused_unscaled_and_clipped_scaled(net_a):
    x = np.array([0, 0, 1e39, 0, 0, 0, 0, 0])
    raw = Learner(net_a, seed=0, scaling="off")
    with pytest.raises(ValueError, match=r"beyond float32's range"):
        raw.learn_one(x, 1)
    assert raw.state()["samples_seen"] == 0
    scaled = Learner(net_a, seed=0)
    scaled.learn_many(*quadrant_data(500, seed=0))
    scaled.learn_one(x, 1)  # read in float64, standardised, clipped to 8 sd
    assert scaled.state()["samples_seen"] == 501 and np.isfinite(scaled.arena.params).all()
