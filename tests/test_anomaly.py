"""Autoencoders (``reconstruct=True``): learning without targets, anomaly scores as the rank
of a reconstruction error among recent ones, save/load, no allocation per sample, River."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

from tweenstream import Dense, Flatten, Learner, Network, load
from tweenstream.runtime.anomaly import RankWindow


def _manifold(n: int, seed: int = 0) -> np.ndarray:
    """8-D samples near a 2-D plane: what an autoencoder with a small bottleneck can learn."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(99).normal(size=(2, 8))
    return (rng.normal(size=(n, 2)) @ basis + 0.05 * rng.normal(size=(n, 8))).astype(np.float32)


def _autoencoder(**settings) -> Learner:
    net = Network(8, [Dense(4, "tanh"), Dense(8)], task="regression")
    return Learner(net, reconstruct=True, mode="backprop", seed=0, **settings)


def test_rank_window_matches_its_definition():
    rng = np.random.default_rng(0)
    w = RankWindow(50)
    kept: list[float] = []
    for e in rng.exponential(size=300).round(1):  # rounded: ties happen
        q = float(rng.exponential())
        recent = np.array(kept[-50:])
        want = 0.5 if not kept else float((recent < q).mean() + 0.5 * (recent == q).mean())
        assert w.rank(q) == pytest.approx(want)
        w.add(float(e))
        kept.append(float(e))


@pytest.mark.parametrize("how", ["one", "many"])
def test_an_autoencoder_learns_without_targets_and_ranks_anomalies_high(how):
    X = _manifold(4_000)
    ae = _autoencoder()
    if how == "one":
        for x in X:
            ae.learn_one(x)
    else:
        for start in range(0, len(X), 500):
            ae.learn_many(X[start:start + 500])
    normal = [ae.score_one(x) for x in _manifold(200, seed=1)]
    rng = np.random.default_rng(2)
    odd = [ae.score_one(x) for x in 3 * rng.normal(size=(200, 8)).astype(np.float32)]
    assert 0.3 < np.median(normal) < 0.75
    assert np.mean(odd) > 0.95 and np.mean(np.array(odd) > 0.9) > 0.9
    assert ae.error_one(X[0]) < ae.error_one(3 * X[0][::-1] + 5)
    assert ae.state()["samples_seen"] == 4_000


def test_wrong_uses_are_refused_with_their_reason():
    ae = _autoencoder()
    with pytest.raises(TypeError, match="learns to reproduce x: give no y"):
        ae.learn_one(np.zeros(8), 1.0)
    with pytest.raises(TypeError, match="give no Y"):
        ae.learn_many(np.zeros((2, 8)), np.zeros((2, 8)))
    with pytest.raises(ValueError, match="cannot change on a live learner"):
        ae.configure(reconstruct=False)
    plain = Learner(Network(8, [Dense(8)], task="regression"))
    with pytest.raises(TypeError, match="needs y"):
        plain.learn_one(np.zeros(8))
    with pytest.raises(TypeError, match="score_one is for an autoencoder"):
        plain.score_one(np.zeros(8))
    for net in (Network(8, [Dense(4)], task="regression"), Network(8, [Dense(8)]),
                Network((2, 4), [Flatten(), Dense(8)], task="regression")):
        with pytest.raises(ValueError, match="reconstruct=True needs a regression network"):
            Learner(net, reconstruct=True)
    with pytest.raises(ValueError, match="leave target_scaling"):
        Learner(Network(8, [Dense(8)], task="regression"), reconstruct=True,
                target_scaling="online")


def test_save_load_keeps_the_window_and_continues_exactly(tmp_path):
    X = _manifold(1_500)
    ae = _autoencoder(reservoir_size=100)
    for x in X[:1_000]:
        ae.learn_one(x)
    ae.save(tmp_path / "ae.tsm")
    again = load(tmp_path / "ae.tsm")
    assert np.array_equal(again.anomaly.buf, ae.anomaly.buf)
    for x in X[1_000:]:
        ae.learn_one(x)
        again.learn_one(x)
    assert np.array_equal(again.arena.params, ae.arena.params)
    assert again.score_one(X[0]) == ae.score_one(X[0])


def test_learning_and_scoring_allocate_nothing_per_sample():
    X = _manifold(6_000)
    ae = _autoencoder()

    def run(start: int, stop: int) -> None:
        for i in range(start, stop):
            ae.score_one(X[i])
            ae.learn_one(X[i])

    run(0, 200)  # warm-up: compile or load kernels
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run(200, 6_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 4_096  # bytes, over 5,800 samples: nothing kept per sample


def test_the_river_anomaly_detector_finds_injected_spikes():
    pytest.importorskip("river")
    from river import anomaly, metrics, preprocessing

    from tweenstream.river import MLPAnomalyDetector

    X = _manifold(6_000, seed=3)
    rng = np.random.default_rng(4)
    spikes = set(rng.choice(np.arange(1_000, 6_000), 60, replace=False).tolist())
    # River's detector on the inputs it expects (in [0, 1]): its documented pipeline
    ours = MLPAnomalyDetector(seed=0)
    trees = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=0)
    auc_ours, auc_trees = metrics.ROCAUC(), metrics.ROCAUC()
    for i, x in enumerate(X):
        row = {f"f{j}": float(v) for j, v in enumerate(x)}
        if i in spikes:
            row[f"f{i % 8}"] += 4.0
        if i >= 1_000:
            auc_ours.update(i in spikes, ours.score_one(row))
            auc_trees.update(i in spikes, trees.score_one(row))
        ours.learn_one(row)
        trees.learn_one(row)
    assert auc_ours.get() > 0.95
    assert 0.0 <= auc_trees.get() <= 1.0  # beside it; the comparison is published, not assumed
