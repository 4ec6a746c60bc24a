"""scikit-learn estimators (tweenstream/sklearn.py): every check of check_estimator, and the
estimators inside scikit-learn's tools (Pipeline, GridSearchCV, clone, pickle).

Every check of ``check_estimator`` runs on both estimators, and none is expected to fail.
scikit-learn itself skips check_array_api_input unless SCIPY_ARRAY_API=1 is set before SciPy
is imported (both estimators pass it when it is set).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from tweenstream import Dense
from tweenstream.sklearn import TweenClassifier, TweenRegressor

# small and fast, yet above the checks' bars (accuracy > 0.83 on blobs, R² > 0.5)
CHECKED = [TweenClassifier(layers=(Dense(16, "tanh"),), max_iter=10, random_state=0),
           TweenRegressor(layers=(Dense(16, "tanh"),), max_iter=10, random_state=0)]


@parametrize_with_checks(CHECKED)
def test_sklearn_check(estimator, check):
    check(estimator)


def _blobs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return make_blobs(n_samples=n, centers=3, n_features=4, random_state=seed)


def test_pipeline_fits_and_scores():
    X, y = _blobs()
    model = make_pipeline(StandardScaler(), TweenClassifier(max_iter=10, random_state=0))
    assert model.fit(X, y).score(X, y) > 0.9


def test_grid_search_over_tween_rate_and_max_iter():
    X, y = _blobs(200)
    search = GridSearchCV(TweenClassifier(random_state=0),
                          {"tween_rate": [0.1, 0.3], "max_iter": [2, 5]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["tween_rate"] in (0.1, 0.3)
    assert search.best_score_ > 0.8
    assert search.best_estimator_.n_iter_ == search.best_params_["max_iter"]


def test_clone_is_unfitted_with_the_same_params():
    X, y = _blobs(100)
    model = TweenClassifier(layers=(Dense(8, "relu"),), mode="backprop", settings={
        "batch_size": 4}, random_state=3).fit(X, y)
    fresh = clone(model)
    assert fresh.get_params() == model.get_params()
    assert not hasattr(fresh, "learner_")
    with pytest.raises(NotFittedError):
        fresh.predict(X)
    assert np.array_equal(fresh.fit(X, y).predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("Estimator", [TweenClassifier, TweenRegressor])
def test_pickle_round_trip_continues_bit_identically(Estimator):
    X, y = _blobs(200)
    if Estimator is TweenRegressor:
        y = X @ np.array([1.0, -2.0, 0.5, 0.0])
    kept = Estimator(max_iter=3, random_state=1).fit(X[:100], y[:100])
    copied = pickle.loads(pickle.dumps(kept))
    method = "predict_proba" if Estimator is TweenClassifier else "predict"
    assert np.array_equal(getattr(copied, method)(X), getattr(kept, method)(X))
    kept.partial_fit(X[100:], y[100:])
    copied.partial_fit(X[100:], y[100:])
    assert np.array_equal(getattr(copied, method)(X), getattr(kept, method)(X))
    assert copied.n_iter_ == kept.n_iter_ == 4


def test_partial_fit_classes_semantics():
    X, y = _blobs(300)
    model = TweenClassifier(random_state=0)
    with pytest.raises(ValueError, match="needs classes="):
        model.partial_fit(X, y)
    # the first batch holds two of the three classes; the third is declared
    first = y != 2
    model.partial_fit(X[first][:50], y[first][:50], classes=[2, 0, 1])
    assert model.classes_.tolist() == [0, 1, 2]
    assert model.predict_proba(X).shape == (300, 3)
    model.partial_fit(X, y, classes=[0, 1, 2])  # repeating them is fine
    for _ in range(5):
        model.partial_fit(X, y)
    assert model.n_iter_ == 7
    assert model.score(X, y) > 0.9
    with pytest.raises(ValueError, match="cannot change"):
        model.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"labels \[7\] that are not among"):
        model.partial_fit(X[:3], [0, 7, 1])
    with pytest.raises(ValueError, match=r"labels \['a'\] that are not among"):
        model.partial_fit(X[:2], ["a", "a"])
    assert model.n_iter_ == 7  # refused batches learned nothing
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        TweenClassifier().partial_fit(X, np.zeros(len(X)), classes=[0])
    # partial_fit after fit continues that fit
    fitted = TweenClassifier(max_iter=2, random_state=0).fit(X, y)
    fitted.partial_fit(X[:10], y[:10])
    assert fitted.n_iter_ == 3


def test_string_labels_and_column_order():
    X, y = _blobs(300)
    names = np.array(["zebra", "ant", "moth"])[y]
    # "zebra" comes first in the data but last in classes_: the columns follow classes_
    order = np.argsort(names != "zebra", kind="stable")
    model = TweenClassifier(max_iter=10, random_state=0).fit(X[order], names[order])
    assert model.classes_.tolist() == ["ant", "moth", "zebra"]
    P = model.predict_proba(X)
    assert P.dtype == np.float64 and np.allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert model.predict(X).tolist() == model.classes_[P.argmax(axis=1)].tolist()
    assert model.score(X, names) > 0.9
    # the column of "zebra" is highest on the zebras
    assert P[names == "zebra", 2].mean() > 0.8


def test_multi_output_regression():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 3))
    Y = np.column_stack([X[:, 0] - X[:, 1], 10.0 * X[:, 2] + 3.0])
    model = TweenRegressor(max_iter=20, random_state=0).fit(X, Y)
    assert model.n_outputs_ == 2
    pred = model.predict(X)
    assert pred.shape == (400, 2) and pred.dtype == np.float64
    assert model.score(X, Y) > 0.9
    column = TweenRegressor(max_iter=2, random_state=0).fit(X, Y[:, :1])
    assert column.predict(X).shape == (400, 1)
    with pytest.raises(ValueError, match="y has 1 targets, but this regressor learned 2"):
        model.partial_fit(X, Y[:, 0])


@pytest.mark.parametrize("Estimator", [TweenClassifier, TweenRegressor])
def test_random_state_decides_everything(Estimator):
    X, y = _blobs(200)
    method = "predict_proba" if Estimator is TweenClassifier else "predict"

    def run(seed):
        return getattr(Estimator(max_iter=3, random_state=seed).fit(X, y), method)(X)

    assert np.array_equal(run(4), run(4))
    assert not np.array_equal(run(4), run(5))
    assert np.array_equal(run(None), run(0))


def test_configuration_reaches_the_learner():
    X, y = _blobs(100)
    model = TweenClassifier(layers=[Dense(8, "relu"), Dense(8, "tanh")], mode="backprop",
                            optimizer="sgd", learning_rate=0.01, scaling="off",
                            settings={"momentum": 0.5, "batch_size": 2}, max_iter=1,
                            shuffle=False).fit(X, y)
    c = model.learner_.config
    assert (c.mode, c.optimizer, c.learning_rate, c.scaling, c.momentum, c.batch_size) == \
        ("backprop", "sgd", 0.01, "off", 0.5, 2)
    assert [layer.units for layer in model.learner_.network.layers] == [8, 8, 3]
    assert model.learner_.state()["samples_seen"] == 100


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"settings": {"mode": "backprop"}}, ValueError, "constructor arguments"),
    ({"settings": {"seed": 1}}, ValueError, "random_state"),
    ({"settings": {"no_such": 1}}, TypeError, "unknown setting"),
    ({"settings": [("batch_size", 2)]}, TypeError, "settings must be a dict"),
    ({"layers": Dense(8)}, TypeError, "layers must be a tuple"),
    ({"max_iter": 0}, ValueError, "max_iter must be >= 1"),
    ({"max_iter": 2.5}, TypeError, "max_iter must be an int"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be True or False"),
    ({"random_state": -1}, ValueError, "random_state"),
    ({"random_state": np.random.RandomState(0)}, TypeError, "random_state"),
    ({"mode": "fast"}, ValueError, "mode must be one of"),
])
def test_bad_params_are_refused_at_fit(params, error, match):
    X, y = _blobs(20)
    with pytest.raises(error, match=match):
        TweenClassifier(**params).fit(X, y)
