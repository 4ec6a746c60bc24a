"""The River estimators: River's own check suite, and the places River users put a model."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

river = pytest.importorskip("river")
pd = pytest.importorskip("pandas")

from river import (  # noqa: E402
    compose,
    datasets,
    dummy,
    ensemble,
    evaluate,
    linear_model,
    metrics,
    preprocessing,
    stats,
)
from river.checks import yield_checks  # noqa: E402

from tweenstream import Dense  # noqa: E402
from tweenstream.river import MLPClassifier, MLPRegressor  # noqa: E402

ESTIMATORS = [MLPClassifier(seed=0), MLPRegressor(seed=0)]
# Every check River's check_estimator yields for these estimators runs; none is skipped.
CHECKS = [(model, check) for model in ESTIMATORS for check in yield_checks(model)]


@pytest.mark.parametrize("model, check", CHECKS,
                         ids=[f"{type(m).__name__}-{c.__name__}" for m, c in CHECKS])
def test_rivers_check_suite(model, check):
    assert check.__name__ not in model._unit_test_skips()
    check(model.clone())


def test_the_suite_is_not_empty():
    names = {c.__name__.split("(")[0] for _, c in CHECKS}
    assert len(CHECKS) >= 40
    for expected in ("check_pickling", "check_emerging_features", "check_predict_proba_one",
                     "check_shuffle_features_no_impact", "check_clone_is_independent"):
        assert any(expected in n for n in names), expected


def test_progressive_validation_behind_a_river_scaler():
    model = preprocessing.StandardScaler() | MLPClassifier(seed=1)
    score = evaluate.progressive_val_score(datasets.Phishing(), model, metrics.Accuracy())
    assert score.get() > 0.8, score
    baseline = evaluate.progressive_val_score(
        datasets.Phishing(), preprocessing.StandardScaler() | linear_model.LogisticRegression(),
        metrics.Accuracy())
    assert score.get() > baseline.get() - 0.05, (score, baseline)


def test_regression_in_a_pipeline():
    model = compose.Select("ordinal_date", "gallup", "ipsos", "morning_consult", "rasmussen",
                           "you_gov") | preprocessing.StandardScaler() | MLPRegressor(seed=0)
    score = evaluate.progressive_val_score(datasets.TrumpApproval(), model, metrics.MAE())
    mean_only = evaluate.progressive_val_score(
        datasets.TrumpApproval(), dummy.StatisticRegressor(stats.Mean()), metrics.MAE())
    assert score.get() < mean_only.get(), (score, mean_only)


def test_bagging_wraps_it():
    model = ensemble.BaggingClassifier(MLPClassifier(seed=0), n_models=3, seed=4)
    score = evaluate.progressive_val_score(datasets.Phishing().take(400), model,
                                           metrics.Accuracy())
    assert score.get() > 0.7, score


def test_learn_many_and_predict_many_on_frames():
    X, y = _frame(300)
    model = MLPClassifier(seed=3, max_classes=3)
    twin = MLPClassifier(seed=3, max_classes=3)
    model.learn_many(X, y)
    for (_, row), label in zip(X.iterrows(), y, strict=True):
        twin.learn_one(row.to_dict(), label)
    proba = model.predict_proba_many(X)
    assert sorted(proba.columns) == ["a", "b", "c"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(model.predict_many(X)) == [twin.predict_one(r.to_dict()) for _, r in X.iterrows()]
    assert (model.predict_many(X) == y).mean() > 0.8


def test_pickle_and_deepcopy_continue_bit_exactly():
    X, y = _frame(400)
    rows = [r.to_dict() for _, r in X.iterrows()]
    model = MLPClassifier(seed=2, max_classes=3, mode="backprop")
    for x, label in zip(rows[:200], y[:200], strict=True):
        model.learn_one(x, label)
    copies = [pickle.loads(pickle.dumps(model)), copy.deepcopy(model)]
    for x, label in zip(rows[200:], y[200:], strict=True):
        for m in (model, *copies):
            m.learn_one(x, label)
    for m in copies:
        assert np.array_equal(m.learner.arena.pbuf, model.learner.arena.pbuf)
        assert m.predict_proba_one(rows[0]) == model.predict_proba_one(rows[0])


def test_clone_is_fresh_with_new_params_and_repr_shows_the_configuration():
    model = MLPClassifier(layers=(Dense(8, "relu"),), seed=1, settings={"momentum": 0.5})
    model.learn_one({"x": 1.0}, "a")
    fresh = model.clone({"seed": 5})
    assert fresh.seed == 5 and fresh.learner is None
    assert fresh.layers == model.layers and fresh.settings == {"momentum": 0.5}
    assert "Dense(units=8" in repr(model) and "seed=1" in repr(model)


def test_bad_configuration_is_refused_at_construction():
    with pytest.raises(ValueError, match="mode must be one of"):
        MLPClassifier(mode="quick")
    with pytest.raises(TypeError, match="unknown setting"):
        MLPRegressor(settings={"no_such": 1})
    with pytest.raises(ValueError, match="max_classes"):
        MLPClassifier(max_classes=1)
    with pytest.raises(ValueError, match="n_features"):
        MLPClassifier(n_features=0)


def test_more_classes_than_units_is_a_clear_error():
    model = MLPClassifier(max_classes=2)
    model.learn_one({"x": 1.0}, "a")
    model.learn_one({"x": 2.0}, "b")
    with pytest.raises(ValueError, match="class"):
        model.learn_one({"x": 3.0}, "c")
    assert model.predict_one({"x": 1.0}) in ("a", "b")  # nothing was lost


def _frame(n: int):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"u": rng.normal(size=n), "v": rng.normal(size=n)})
    y = np.where(X["u"] > 0.5, "a", np.where(X["v"] > 0, "b", "c"))
    return X, pd.Series(y)


def _anomaly_checks():
    """River's check suite for anomaly detectors; the checks that read a dataset get a local
    one (River's default downloads a dataset, which tests never do)."""
    import functools

    from test_anomaly import _manifold

    from tweenstream.river import MLPAnomalyDetector

    X = _manifold(1_000, seed=7)
    rng = np.random.default_rng(8)
    data = []
    for i, x in enumerate(X):
        spike = i > 200 and rng.random() < 0.03
        data.append(({f"f{j}": float(v) + (5.0 if spike and j == i % 8 else 0.0)
                      for j, v in enumerate(x)}, bool(spike)))
    out = []
    for check in yield_checks(MLPAnomalyDetector(seed=0)):
        name = check.__name__
        if isinstance(check, functools.partial) and "dataset" in check.keywords:
            check = functools.partial(check.func, *check.args,
                                      **{**check.keywords, "dataset": data})
        out.append((name, check))
    return out


ANOMALY_CHECKS = _anomaly_checks()


@pytest.mark.parametrize("name, check", ANOMALY_CHECKS, ids=[n for n, _ in ANOMALY_CHECKS])
def test_rivers_checks_pass_for_the_anomaly_detector(name, check):
    from tweenstream.river import MLPAnomalyDetector

    assert len(ANOMALY_CHECKS) >= 20
    check(MLPAnomalyDetector(seed=0).clone())
