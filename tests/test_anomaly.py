"""Autoencoders (``reconstruct=True``): learning without targets, anomaly scores as the rank
of a reconstruction error among recent ones, save/load, no allocation per sample, River."""

from __future__ import annotations

import gc
import time
import tracemalloc

import numpy as np
import pytest

from tweenstream import Dense, Flatten, Learner, Network, RepeatVector, TimeDense, load
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
                Network((2, 4), [Flatten(), Dense(6)], task="regression"),
                Network((2, 4), [Flatten(), Dense(2, "tanh"), RepeatVector(4), TimeDense(2)],
                        task="regression")):
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


def test_a_daemon_learns_and_scores_an_unlabelled_stream():
    import zmq
    from stream_helpers import Served

    from tweenstream.stream import protocol
    from tweenstream.stream.client import Producer

    served = Served(_autoencoder(), metrics=True, anomaly_threshold=0.99, metrics_interval=0.05)
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"anomaly")
    sub.connect(served.config.metrics)
    try:
        X = _manifold(3_000)
        spikes = X[:20] + 6.0 * np.eye(8, dtype=np.float32)[np.arange(20) % 8]
        with Producer(served.config.data, stream="sensor") as p:
            for start in range(0, 3_000, 100):
                assert p.learn(X[start:start + 100], None)  # no labels
            served.wait(lambda s: s["samples_seen"] == 3_000)
            scores = served.control.predict(np.concatenate([_manifold(20, seed=5), spikes]))
            assert scores.shape == (40, 1) and np.median(scores[:20]) < 0.8 < scores[20:].min()
            assert p.learn(spikes, None)
            assert p.learn(np.full((1, 8), np.nan, np.float32), None)  # refused alone
        st = served.wait(lambda s: s["samples_seen"] == 3_020 and s["rejected_messages"])
        assert st["rejected_messages"] == {"nan": 1}
        events = []
        deadline = time.monotonic() + 20
        while len(events) < st["counters"].get("anomalies", 0) and time.monotonic() < deadline:
            if sub.poll(100):
                _topic, body = sub.recv_multipart()
                events.append(protocol.unpack(body))
        late = [e for e in events if e["sample"] >= 3_000]
        assert len(late) >= 15 and all(e["stream"] == "sensor" and e["score"] >= 0.99
                                       for e in events)
        assert len(events) - len(late) <= 0.02 * 3_000  # few false alarms on normal samples
        labelled = served.control.call("status")  # a labelled learn is refused by reason
        with zmq.Context() as c2, c2.socket(zmq.PUSH) as push:
            push.connect(served.config.data)
            push.send_multipart(protocol.encode("learn", X[:2], X[:2], seq=999, stream="s2"))
        served.wait(lambda s: s["rejected_messages"].get("bad_header") == 1)
        assert labelled["ok"]
    finally:
        sub.close(linger=0)
        ctx.term()
        served.stop()


def test_a_classifier_refuses_an_unlabelled_learn_message():
    from tweenstream.stream import protocol
    from tweenstream.stream.protocol import Contract, ProtocolError

    frames = protocol.encode("learn", np.zeros((2, 4), np.float32), None, seq=0)
    assert len(frames) == 2
    with pytest.raises(ProtocolError, match="needs Y"):
        protocol.decode(frames, Contract(4, 3, True))
    msg = protocol.decode(frames, Contract(4, 4, False, reconstruct=True))
    assert msg.Y is None and msg.rows == 2



def test_an_exported_autoencoder_gives_its_reconstruction_error_as_a_second_output(tmp_path):
    from tweenstream.export.builder import export
    from tweenstream.export.format import ERROR_OUTPUT, session

    ae = _autoencoder()
    X = _manifold(1_000)
    for x in X:
        ae.learn_one(x)
    report = export(ae, tmp_path / "ae.onnx", recorded=X[:50])
    assert report["parity"]["passed"] and "reconstruction_error" in report["parity"]
    sess = session((tmp_path / "ae.onnx").read_bytes())
    assert [o.name for o in sess.get_outputs()] == ["outputs", ERROR_OUTPUT]
    out, err = sess.run(None, {"input": X[:5]})
    assert out.shape == (5, 8) and err.shape == (5, 1)
    want = np.array([ae.error_one(x) for x in X[:5]])
    assert np.allclose(err[:, 0], want, rtol=1e-4, atol=1e-6)
