"""The daemon in a thread: learning, predictions, delayed labels, seq numbers, bad input."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
import zmq
from helpers import quadrant_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stream_helpers import Served

from tweenstream import Dense, Learner, Network, load
from tweenstream.stream import protocol
from tweenstream.stream.client import Control, Producer


@pytest.fixture
def served(net_a):
    s = Served(Learner(net_a, mode="hybrid", seed=0), label_capacity=3)
    yield s
    s.stop()


def test_learns_the_stream_test_then_train(served):
    X, y = quadrant_data(60_000, seed=1)
    with Producer(served.config.data, stream="q") as p:
        for i in range(0, 60_000, 1000):
            p.learn(X[i:i + 1000], y[i:i + 1000])
    st = served.wait(lambda s: s["samples_seen"] == 60_000)
    q = st["streams"]["q"]
    assert q["samples"] == 60_000 and q["last_seq"] == 59 and q["gaps"] == 0
    assert q["recent_accuracy"] > 0.93 and q["prequential_accuracy"] > 0.88
    assert st["phase"] == "backprop"  # a backprop copy won a race and the learner switched
    assert st["races"] >= 1 and st["races_won_by_backprop"] == 1 and st["switched_at"] >= 1_000


def test_over_tcp_loopback_with_system_chosen_ports(net_a):
    s = Served(Learner(net_a, seed=0), tcp=True)
    try:
        assert s.config.data.startswith("tcp://127.0.0.1:") and not s.config.data.endswith("*")
        X, y = quadrant_data(2000, seed=1)
        with Producer(s.config.data) as p:
            p.learn(X, y)
        s.wait(lambda st: st["samples_seen"] == 2000)
        assert s.control.predict(X[:2]).shape == (2, 4)
        latency = s.control.status()["predict_latency"]  # receive to send, predictions only
        assert latency["count"] == 1 and 0 < latency["p50_us"] == latency["p99_us"]
    finally:
        s.stop()


def test_lazy_pirate_retries_after_silence():
    ctx = zmq.Context.instance()
    server = ctx.socket(zmq.ROUTER)
    port = server.bind_to_random_port("tcp://127.0.0.1")

    def answer_second_request():
        server.recv_multipart()  # the first request is ignored: the client must retry
        ident, empty, _ = server.recv_multipart()
        server.send_multipart([ident, empty, protocol.pack({"ok": True, "code": "ok"})])

    worker = threading.Thread(target=answer_second_request, daemon=True)
    worker.start()
    with Control(f"tcp://127.0.0.1:{port}", timeout=0.2, retries=5) as c:
        assert c.status() == {"ok": True, "code": "ok"}
    worker.join(10)
    server.close(linger=0)


def test_corrupt_newest_checkpoint_falls_back(net_a, tmp_path):
    from tweenstream.stream.checkpoint import CheckpointStore
    from tweenstream.stream.daemon import Daemon, ServeConfig

    store = CheckpointStore(tmp_path / "ck")
    first = Learner(net_a, seed=1)
    first.learn_many(*quadrant_data(100, seed=0))
    store.write(first, {"streams": {}, "counters": {"samples": 100}})
    newest = store.write(Learner(net_a, seed=2), {})
    newest.write_bytes(newest.read_bytes()[:500])
    log = io.StringIO()
    config = ServeConfig(data="inproc://x", control="inproc://y",
                         checkpoint_dir=str(tmp_path / "ck"))
    daemon = Daemon.resume(lambda: Learner(net_a, seed=9), config, log=log)
    assert daemon.learner.state()["samples_seen"] == 100
    events = [json.loads(line)["event"] for line in log.getvalue().splitlines()]
    assert events == ["checkpoint_corrupt", "resumed"]
    assert "ckpt-000000000002.tsm" in log.getvalue()


def test_predict_and_learn_predict(served):
    X, y = quadrant_data(5, seed=2)
    proba = served.control.predict(X)
    assert proba.shape == (5, 4) and np.allclose(proba.sum(axis=1), 1, atol=1e-6)
    before = served.control.learn_predict(X, y, seq=0, stream="lp")
    assert np.array_equal(before, proba)  # predictions are made before learning
    st = served.control.status()
    assert st["samples_seen"] == 5 and st["streams"]["lp"]["last_seq"] == 0
    assert not np.array_equal(served.control.predict(X), proba)


def test_delayed_labels_join_and_evict(served):
    X, y = quadrant_data(4, seed=3)
    served.control.predict(X[:2], ids=["a", "b"])
    served.control.predict(X[2:], ids=[7, 8])  # capacity 3: "a" is evicted
    with Producer(served.config.data) as p:
        p.label(["b", 8, "a", "zz"], y[[1, 3, 0, 0]])
    st = served.wait(lambda s: s["samples_seen"] == 2)
    labels = served.control.metrics()["labels"]
    assert labels == {"waiting": 1, "capacity": 3, "evicted": 1, "expired": 0, "unknown": 2}
    assert st["streams"]["default"]["samples"] == 2


def test_labels_expire_by_age(net_a):
    s = Served(Learner(net_a), label_max_age=1e-9)
    try:
        X, y = quadrant_data(1, seed=0)
        s.control.predict(X, ids=["old"])
        with Producer(s.config.data) as p:
            p.label(["old"], y)
        s.wait(lambda st: st["messages"] == 0 and s.control.metrics()["labels"]["expired"] == 1)
    finally:
        s.stop()


def test_sequence_numbers(served):
    X, y = quadrant_data(10, seed=4)
    with Producer(served.config.data, stream="s") as p:
        for seq in (0, 1, 1, 4, 2, 0):
            p.seq = seq
            p.learn(X[seq:seq + 1], y[seq:seq + 1])
    st = served.wait(lambda s: s["streams"].get("s", {}).get("duplicates", 0) == 2)
    s = st["streams"]["s"]
    assert (s["samples"], s["last_seq"], s["gaps"], s["late"], s["missing"]) == (4, 4, 1, 1, 1)
    assert st["samples_seen"] == 4  # the duplicates were not learned


def test_control_errors_are_structured(served):
    c = served.control
    assert c.call("bogus")["code"] == "unknown_command"
    assert c.set_phase("sgd") == {"ok": False, "code": "bad_request", "reason":
                                  "phase must be one of backprop, tween, tween-heuristic, "
                                  "hybrid, found 'sgd'"}
    assert c.call("save")["reason"].startswith("name None must be a plain file name")
    assert c.call("save", name="/nonexistent/dir/m.tsm")["code"] == "bad_request"
    assert c.set_phase("backprop")["phase"] == "backprop"
    assert c.set_phase("hybrid")["phase"] == "tween"
    reply = protocol.unpack(c.request([b"\xc1"], "junk")[0])
    assert reply["ok"] is False and reply["code"] == "garbage"
    with pytest.raises(ValueError, match="wrong_shape: X shape"):
        c.predict(np.zeros((1, 3), np.float32))
    assert c.status()["rejected_messages"] == {"garbage": 1, "wrong_shape": 1}


def test_checkpoint_and_save_commands(served):
    X, y = quadrant_data(3000, seed=5)
    with Producer(served.config.data) as p:
        p.learn(X, y)
    served.wait(lambda s: s["samples_seen"] == 3000)
    path = served.control.checkpoint()["path"]
    assert load(path).state()["samples_seen"] == 3000
    assert served.control.save("m.tsm")["ok"]
    assert load(f"{served.outputs}/m.tsm").state()["samples_seen"] == 3000


def test_metrics_are_published(net_a):
    served = Served(Learner(net_a), metrics=True, metrics_interval=0.02)
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"metrics")
    sub.connect(served.config.metrics)
    try:
        assert sub.poll(10_000), "no metrics published"
        topic, body = sub.recv_multipart()
        metrics = protocol.unpack(body)
        assert topic == b"metrics" and {"learner", "streams", "counters", "labels"} <= set(metrics)
        json.dumps(metrics)  # JSON-able
    finally:
        sub.close(linger=0)
        ctx.term()
        served.stop()


BAD_FRAMES = st.lists(st.binary(max_size=48), min_size=1, max_size=4)
GOOD = protocol.encode("learn", np.zeros((2, 8), np.float32), np.array([0, 1]), seq=0)


@st.composite
def mutated(draw):
    frames = [bytearray(f) for f in GOOD]
    target = frames[draw(st.integers(0, 2))]
    pos = draw(st.integers(0, len(target)))
    target[pos:pos + 4] = draw(st.binary(min_size=1, max_size=4))
    return [bytes(f) for f in frames]


@pytest.fixture(scope="module")
def fuzz_target():
    net = Network(8, [Dense(8, "tanh"), Dense(2)])
    served = Served(Learner(net, seed=0))
    yield served
    served.stop()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(BAD_FRAMES, mutated()))
def test_bad_frames_are_rejected_and_change_nothing(fuzz_target, frames):
    """Every message is either rejected with a code (model untouched) or valid and learned."""
    c = fuzz_target.control
    before = c.status()
    try:
        msg = protocol.decode(frames, protocol.Contract(8, 2, True))
        valid = not (msg.seq is not None and msg.seq <= before["streams"].get(
            msg.stream, {"last_seq": -1})["last_seq"] - 4096)
    except protocol.ProtocolError:
        valid = False
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.connect(fuzz_target.config.data)
    sock.send_multipart(frames)
    sock.close(linger=5000)
    handled = sum(before["rejected_messages"].values()) + before["messages"]
    after = fuzz_target.wait(lambda s: sum(s["rejected_messages"].values()) + s["messages"]
                             + sum(v["duplicates"] for v in s["streams"].values())
                             > handled + sum(v["duplicates"] for v in before["streams"].values()))
    if not valid:
        assert after["samples_seen"] == before["samples_seen"]
        assert after["updates"] == before["updates"]
    assert "internal_error" not in after["rejected_messages"]


def test_sub_data_socket_follows_a_publisher(net_a):
    s = Served(Learner(net_a, seed=0), subscribe=True)
    try:
        X, y = quadrant_data(3000, seed=6)
        with Producer(s.config.data, stream="pub", publish=True) as p:
            # a new subscriber misses what was published before it joined: resend seq 0 until
            # it is learned (repeats are duplicates, never learned twice), then the rest
            deadline = time.monotonic() + 20
            while s.control.status()["samples_seen"] == 0:
                assert time.monotonic() < deadline, "the subscriber never joined"
                p.seq = 0
                p.learn(X[:1000], y[:1000])
            for i in (1, 2):
                p.learn(X[i * 1000:(i + 1) * 1000], y[i * 1000:(i + 1) * 1000])
            st = s.wait(lambda st: st["samples_seen"] == 3000)
        assert st["streams"]["pub"]["last_seq"] == 2
    finally:
        s.stop()


def test_bad_samples_leave_the_model_and_its_labels_byte_identical(net_a):
    """Non-finite inputs and labels over capacity are refused with their codes; the model's
    arrays, input statistics, feature slots and label map do not change."""
    learner = Learner(net_a, seed=0)
    s = Served(learner)
    try:
        X, y = quadrant_data(500, seed=3)
        with Producer(s.config.data, stream="ok") as p:
            p.learn(X, y)
        s.wait(lambda st: st["samples_seen"] == 500)
        before = {k: v.copy() for k, v in learner._arrays().items()}
        classes = list(learner.classes)
        Xnan = X[:4].copy()
        Xnan[2, 1] = np.nan
        sock = zmq.Context.instance().socket(zmq.PUSH)
        sock.connect(s.config.data)
        sock.send_multipart(protocol.encode("learn", Xnan, y[:4], seq=0, stream="bad"))
        sock.send_multipart(protocol.encode("learn", X[:2], np.array([0, 4]), seq=1,
                                            stream="bad"))
        sock.close(linger=5000)
        st = s.wait(lambda st: sum(st["rejected_messages"].values()) >= 2)
        assert set(st["rejected_messages"]) == {"nan", "bad_label"}
        assert st["samples_seen"] == 500
        for k, v in learner._arrays().items():
            assert v.tobytes() == before[k].tobytes(), k
        assert learner.classes == classes
    finally:
        s.stop()
