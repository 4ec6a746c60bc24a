"""Replay reservoir, Page-Hinkley drift detection, and parallel backprop refinement."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import quadrant_data

from tweenstream import Dense, Learner, Network
from tweenstream.runtime.drift import PageHinkley
from tweenstream.runtime.refine import RefineSettings, refine
from tweenstream.runtime.reservoir import Reservoir


def test_reservoir_is_uniform_over_the_stream():
    counts = np.zeros(1000)
    for seed in range(200):
        r = Reservoir(100, 1, 2, True, seed=seed)
        for start in range(0, 1000, 37):
            X = np.arange(start, min(start + 37, 1000), dtype=np.float32)[:, None]
            r.add_many(X, np.zeros(len(X), np.int64))
        counts[r.data()[0][:, 0].astype(int)] += 1
    kept = counts / 200  # each item should be kept with probability 100 / 1000
    assert abs(kept[:500].mean() - 0.1) < 0.01 and abs(kept[500:].mean() - 0.1) < 0.01


def test_recency_weighting_favours_recent_samples():
    r = Reservoir(100, 1, 2, True, recency=0.05, seed=0)
    X = np.arange(10_000, dtype=np.float32)[:, None]
    r.add_many(X, np.zeros(10_000, np.int64))
    assert np.median(r.data()[0]) > 7_000  # uniform would give about 5,000


@pytest.mark.parametrize("recency", [0.0, 0.3])
@pytest.mark.parametrize("classification", [True, False])
def test_add_one_is_add_many_with_one_row(recency, classification):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((500, 3)).astype(np.float32)
    Y = rng.integers(0, 4, 500) if classification else rng.standard_normal((500, 4))
    Y = Y.astype(np.int64 if classification else np.float32)
    one, many = (Reservoir(50, 3, 4, classification, recency=recency, seed=1) for _ in "ab")
    for i in range(500):
        one.add_one(X[i], Y[i:i + 1])
        many.add_many(X[i:i + 1], Y[i:i + 1])
    for name in ("X", "Y", "stamp"):
        assert np.array_equal(getattr(one, name), getattr(many, name))
    assert one.seen == many.seen == 500


def test_reservoir_newest_split_and_state():
    r = Reservoir(10, 2, 1, False, seed=1)
    X = np.arange(40, dtype=np.float32).reshape(20, 2)
    r.add_many(X, X[:, :1] * 2)
    newest_X, newest_Y = r.newest(3)
    assert np.all(np.diff(newest_X[:, 0]) > 0) and np.array_equal(newest_Y, newest_X[:, :1] * 2)
    (Xt, _), (Xh, _) = r.split(0.3, seed=0)
    assert len(Xt) == 7 and len(Xh) == 3
    clone = Reservoir(10, 2, 1, False, seed=99)
    clone.restore(r.arrays(), r.meta())
    more = np.ones((5, 2), np.float32)
    r.add_many(more, more[:, :1])
    clone.add_many(more, more[:, :1])
    assert np.array_equal(r.X, clone.X) and r.seen == clone.seen == 25


@pytest.mark.parametrize("kwargs, message", [
    ({"capacity": 0}, "capacity must be >= 1"),
    ({"capacity": 5, "recency": 1.0}, r"recency must be in \[0, 1\)"),
])
def test_reservoir_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Reservoir(n_inputs=2, n_outputs=2, classification=True, **kwargs)


def test_page_hinkley_detects_a_rise_and_ignores_noise():
    rng = np.random.default_rng(0)
    ph = PageHinkley(delta=0.01, threshold=2.0, min_samples=30)
    assert not any(ph.update(v) for v in 0.3 + 0.05 * rng.standard_normal(5_000))
    alarms = [i for i, v in enumerate(0.8 + 0.05 * rng.standard_normal(200)) if ph.update(v)]
    assert alarms and alarms[0] < 20 and ph.detections >= 1


def _undertrained():
    X, y = quadrant_data(6_000, seed=0)
    model = Learner(Network(8, [Dense(16, "tanh"), Dense(4)]), mode="tween", seed=0)
    model.learn_many(X[:300], y[:300])  # a rough start
    return model, X, y


@pytest.fixture(params=["threads", "ray"])
def backend(request):
    """How a test's jobs compute gradients: threads of this process, or Ray actors (a local
    instance); ``backend(settings)`` is the ``workers`` argument of ``refine``."""
    if request.param == "threads":
        return lambda settings: None
    request.getfixturevalue("ray_local")
    from tweenstream.stream.ray_refine import RayWorkers

    def workers(settings: RefineSettings) -> RayWorkers:  # kept warm between tests, as a
        count = settings.threads or 1                      # refine-server keeps them
        return _RAY_WORKERS.setdefault(count, RayWorkers(count, cpus_per_worker=0.5))

    return workers


_RAY_WORKERS: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _release_ray_workers():
    """The actors kept for this module give their CPUs back to the session's Ray instance."""
    yield
    for workers in _RAY_WORKERS.values():
        workers.reset()
    _RAY_WORKERS.clear()


def test_refine_improves_held_out_metrics_and_leaves_the_learner_alone():
    model, X, y = _undertrained()
    params = model.arena.params.copy()
    settings = RefineSettings(epochs=8, learning_rate=0.05, threads=2)
    result = refine(model, X, y, settings)  # on Ray: the same parameters, bit for bit (below)
    assert result.after["loss"] < result.before["loss"]
    assert result.after["accuracy"] > max(result.before["accuracy"], 0.95)
    assert np.array_equal(model.arena.params, params)
    assert result.params.dtype == np.float32 and np.isfinite(result.params).all()


def test_refine_is_deterministic_for_a_thread_count_and_close_across_counts(backend):
    model, X, y = _undertrained()
    settings = RefineSettings(epochs=3, learning_rate=0.05, threads=2)
    a, b = (refine(model, X, y, settings, workers=backend(settings)) for _ in range(2))
    assert np.array_equal(a.params, b.params)
    assert np.array_equal(a.params, refine(model, X, y, settings).params)  # = 2 threads
    ones = RefineSettings(epochs=3, learning_rate=0.05, threads=1)
    one = refine(model, X, y, ones, workers=backend(ones))
    assert np.abs(one.params - a.params).max() < 1e-4  # only the summation order differs


def test_adam_and_early_stopping(backend):
    model, X, y = _undertrained()
    settings = RefineSettings(epochs=2, optimizer="adam", learning_rate=0.03)
    adam = refine(model, X, y, settings, workers=backend(settings))
    assert adam.after["accuracy"] > adam.before["accuracy"]
    settings = RefineSettings(epochs=30, learning_rate=20.0, patience=1)
    wild = refine(model, X, y, settings, workers=backend(settings))
    assert wild.stopped_early and wild.epochs_run < 30
    assert wild.after["loss"] <= wild.before["loss"]  # the best parameters seen, never worse


def test_refine_regression(backend):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (3_000, 3)).astype(np.float32)
    Y = np.stack([X[:, 0] - X[:, 1], X[:, 2] ** 2], axis=1).astype(np.float32)
    model = Learner(Network(3, [Dense(16, "tanh"), Dense(2)], task="regression"), seed=0)
    with pytest.raises(ValueError, match="input standardisation has no statistics yet"):
        refine(model, X, Y, RefineSettings(epochs=1))
    model.learn_many(X[:200], Y[:200])  # a rough start; the input and target statistics
    settings = RefineSettings(epochs=10, learning_rate=0.05, threads=2)
    result = refine(model, X, Y, settings, workers=backend(settings))
    assert result.after["mae"] < 0.6 * result.before["mae"]
    raw = Learner(Network(3, [Dense(16, "tanh"), Dense(2)], task="regression"), seed=0,
                  scaling="off", target_scaling="off")
    result = refine(raw, X, Y, settings, workers=backend(settings))
    assert result.after["mae"] < 0.6 * result.before["mae"]


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizer": "rmsprop"}, "optimizer must be 'sgd' or 'adam'"),
    ({"holdout": 0.0}, r"holdout must be in \(0, 1\)"),
    ({"epochs": 0}, "epochs must be an int >= 1"),
])
def test_refine_settings_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RefineSettings(**kwargs)


def test_learner_keeps_a_reservoir_that_survives_save_and_load(net_a, tmp_path):
    from tweenstream import load

    X, y = quadrant_data(5_000, seed=3)
    model = Learner(net_a, seed=0, reservoir_size=500, reservoir_recency=0.01)
    model.learn_many(X[:3_000], y[:3_000])
    for i in range(3_000, 3_100):
        model.learn_one(X[i], int(y[i]))
    assert model.reservoir.seen == 3_100 and len(model.reservoir) == 500
    model.save(tmp_path / "m.tsm")
    again = load(tmp_path / "m.tsm")
    twin = model.clone(include_state=True)
    for other in (model, again, twin):
        other.learn_many(X[3_100:], y[3_100:])
    for other in (again, twin):
        assert np.array_equal(other.reservoir.X, model.reservoir.X)
        assert np.array_equal(other.reservoir.Y, model.reservoir.Y)
        assert np.array_equal(other.arena.params, model.arena.params)
    stored_X, stored_y = model.reservoir.data()
    assert np.array_equal(stored_y, (2 * (stored_X[:, 0] > 0) + (stored_X[:, 1] > 0)))
    with pytest.raises(ValueError, match="reservoir_size cannot change on a live learner"):
        model.configure(reservoir_size=10)
    with pytest.raises(ValueError, match=r"reservoir_recency must be in \[0, 1\)"):
        Learner(net_a, reservoir_recency=1.5)
