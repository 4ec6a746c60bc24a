"""Hostile models and hostile requests against the edge: nothing ends it, nothing non-finite is
served as ``ok``, a restart after a rejected swap serves the last good model, and a push cannot
rename a model's classes."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import quadrant_data
from hostile_models import fails_when_run, inf_weight, rebuilt, wrong_width

from tweenstream import Dense, Learner, Network
from tweenstream.edge import EdgePredictor
from tweenstream.edge.server import EdgeServer, run_edge
from tweenstream.export import builder, export
from tweenstream.export import format as fmt
from tweenstream.models import Embedding, Flatten, SwiGLU
from tweenstream.stream import protocol
from tweenstream.stream.client import Control

NET = Network(8, [Dense(16, "tanh"), Dense(4)])


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp(prefix="tsh-", dir="/tmp"))  # ipc paths must be short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _trained(net: Network = NET, labels=None, seed: int = 0) -> Learner:
    learner = Learner(net, mode="backprop", seed=seed)
    X, y = quadrant_data(1000, seed=seed, n_features=net.n_inputs)
    learner.learn_many(X, y if labels is None else [labels[c] for c in y])
    return learner


def _token_model() -> Learner:
    learner = Learner(Network(6, [Embedding(10, 4), Flatten(), Dense(3)]), seed=0)
    ids = np.random.default_rng(0).integers(0, 10, (300, 6)).astype(np.float32)
    learner.learn_many(ids, ids[:, 0].astype(np.int64) % 3)
    return learner


class Edge:
    """An EdgeServer in a thread over ipc."""

    def __init__(self, predictor: EdgePredictor, folder: Path, **options) -> None:
        self.server = EdgeServer(predictor, f"ipc://{folder}/edge", poll_ms=5,
                                 log=open(folder / "edge.log", "a"), **options)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert self.server.ready.wait(30)
        self.control = Control(self.server.bound, timeout=20, retries=1)

    def ask(self, frames: list[bytes]) -> dict:
        return protocol.unpack(self.control.request(frames, "hostile")[0])

    def close(self) -> None:
        self.control.shutdown()
        self.thread.join(20)
        self.control.close()
        assert not self.thread.is_alive()


# --- 2: SwiGLU's silu keeps its precision for large negative gates ------------------------
def test_swiglu_parity_holds_for_large_negative_gates():
    # gates of -16 .. -24, where onnxruntime's Sigmoid loses its precision, times a large up
    # projection: exported as x * Sigmoid(x) this output was off by all of its 0.34
    learner = Learner(Network(4, [SwiGLU(8, out=4), Dense(1)], task="regression"), seed=0,
                      scaling="off", target_scaling="off")
    p = learner.arena.layer_params(0)
    p["W_g"][:], p["b_g"][:], p["W_u"][:], p["W_d"][:] = -5.0, 0.0, 2e4, 1.0
    X = np.random.default_rng(1).uniform(0.8, 1.2, (64, 4)).astype(np.float32)
    got = fmt.session(builder.build_model(learner).SerializeToString()).run(
        None, {"input": X})[0][:, 0]
    ref = learner.predict_many(X)
    assert np.abs(ref).max() > 0.1  # the silu of those gates matters
    assert np.abs(got - ref).max() <= 1e-5


# --- 3: token ids the engine refuses are refused at the edge, which keeps serving -----------
@pytest.mark.parametrize("bad", [10.0, -1.0, 2.7, 1e9])
def test_bad_token_ids_get_an_error_and_the_edge_keeps_serving(folder, bad):
    learner = _token_model()
    export(learner, folder / "ids.onnx")
    edge = Edge(EdgePredictor.from_file(folder / "ids.onnx"), folder)
    try:
        good = np.zeros((2, 6), np.float32)
        X = good.copy()
        X[1, 3] = bad
        reply = edge.ask(protocol.encode("predict", X))
        assert reply["ok"] is False and reply["code"] == "bad_value", reply
        assert "token ids" in reply["reason"]
        np.testing.assert_allclose(edge.control.predict(good), learner.predict_proba_many(good),
                                   atol=1e-5)
    finally:
        edge.close()


# --- 4: a swap whose session build or smoke run raises is rejected -------------------------
def test_a_swap_that_onnxruntime_cannot_build_or_run_is_rejected(folder):
    model = builder.build_model(_trained())
    edge = EdgePredictor(model.SerializeToString())

    for change in (wrong_width, fails_when_run):
        reply = edge.swap(rebuilt(model, change), "hostile")
        assert reply["ok"] is False and reply["code"] in ("checker", "runtime"), reply
    assert edge.predict(np.zeros((1, 8), np.float32)).shape == (1, 4)


# --- 5: finite in, finite out -------------------------------------------------------------
def test_a_model_with_an_infinite_weight_is_rejected():
    model = builder.build_model(_trained())

    edge = EdgePredictor(model.SerializeToString())
    reply = edge.swap(rebuilt(model, inf_weight), "hostile")
    assert reply == {"ok": False, "code": "non_finite", "reason": reply["reason"]}
    assert "not finite" in reply["reason"]


def test_a_non_finite_prediction_is_an_error_not_ok(folder):
    learner = _trained()
    learner.arena.layer_params(1)["W"][:] = np.float32(3e38)  # finite, overflows on use
    model = builder.build_model(learner)
    edge = EdgePredictor(builder.build_model(_trained()).SerializeToString())
    old = edge.served  # serve the overflowing model as if a check had let it through
    edge.served = type(old)(fmt.session(model.SerializeToString()), old.contract,
                            old.description, "hostile")
    server = Edge(edge, folder)
    try:
        reply = server.ask(protocol.encode("predict", np.ones((2, 8), np.float32)))
        assert reply["ok"] is False and reply["code"] == "non_finite_output", reply
    finally:
        server.close()


# --- 6: a restart serves the last good model when the watched file was rejected -------------
def test_a_restart_serves_the_last_good_model(folder):
    good = folder / "watched.onnx"
    export(_trained(), good)
    edge = Edge(EdgePredictor.from_file(good), folder, watch=good, state_dir=folder / "state")
    before = edge.control.predict(np.ones((1, 8), np.float32))
    good.write_bytes(b"not a model")  # rejected by the running edge
    edge.server._check_watch()
    edge.close()

    class Args:
        model, endpoint, watch, log = good, f"ipc://{folder}/edge2", good, folder / "e2.log"
        state_dir = folder / "state"

    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(rc=run_edge(Args)), daemon=True)
    thread.start()
    with Control(f"ipc://{folder}/edge2", timeout=20, retries=2) as c:
        np.testing.assert_array_equal(c.predict(np.ones((1, 8), np.float32)), before)
        assert c.status()["source"].endswith("last-good.onnx")
        c.shutdown()
    thread.join(20)
    assert result == {"rc": 0}


# --- 8: a push cannot rename the served model's classes -----------------------------------
def test_a_push_with_other_class_labels_is_rejected():
    named = _trained(labels=["q0", "q1", "q2", "q3"])
    edge = EdgePredictor(builder.build_model(named).SerializeToString())
    renamed = builder.build_model(_trained())  # the same units, classes 0..3
    reply = edge.swap(renamed.SerializeToString(), "pushed")
    assert reply["ok"] is False and reply["code"] == "contract" and "classes" in reply["reason"]
    grown = builder.build_model(named)  # the same classes: accepted
    assert edge.swap(grown.SerializeToString(), "pushed")["ok"]


# --- hostile requests of every kind: each gets its code, and the edge keeps serving ---------
def test_hostile_requests_get_codes_and_the_edge_keeps_serving(folder):
    learner = _trained()
    export(learner, folder / "m.onnx")
    edge = Edge(EdgePredictor.from_file(folder / "m.onnx"), folder)
    good = np.ones((2, 8), np.float32)
    nan, inf = good.copy(), good.copy()
    nan[0, 0], inf[1, 2] = np.nan, np.inf
    hostile = {
        "wrong_shape": protocol.encode("predict", np.ones((2, 7), np.float32)),
        "nan": protocol.encode("predict", nan),
        "garbage": [b"\xc1"],
        "truncated": [protocol.pack({"v": 1, "kind": "predict"})],
        "unknown_command": [protocol.pack({"cmd": 3})],
    }
    try:
        for code, frames in hostile.items():
            reply = edge.ask(frames)
            assert reply["ok"] is False, (code, reply)
        assert edge.ask(protocol.encode("predict", inf))["code"] == "nan"
        np.testing.assert_allclose(edge.control.predict(good), learner.predict_proba_many(good),
                                   atol=1e-5)
    finally:
        edge.close()


# --- metadata a non-Python consumer can read with onnxruntime alone ------------------------
def test_metadata_tells_a_consumer_what_to_feed_and_what_comes_back():
    import json

    import onnxruntime as ort

    learner = _token_model()
    sess = ort.InferenceSession(builder.build_model(learner).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map  # the same map the C API reads
    shape = json.loads(meta[fmt.META_INPUT])
    assert shape == {"shape": [6], "layout": "row-major, flattened to one row per sample",
                     "dtype": "float32", "vocab": 10}
    assert json.loads(meta[fmt.META_CLASSES]) == [0, 1, 2]
    assert int(meta[fmt.META_INPUTS]) == sess.get_inputs()[0].shape[1] == 6
    assert json.loads(meta[fmt.META_LABELS]) == ["0", "1", "2"]
    assert meta[fmt.META_TASK] == "classification" and sess.get_outputs()[0].name == \
        "probabilities"
    scaled = builder.build_model(_trained())
    meta = ort.InferenceSession(scaled.SerializeToString(), providers=["CPUExecutionProvider"]
                                ).get_modelmeta().custom_metadata_map
    assert json.loads(meta[fmt.META_SCALING])["standardise"] is True


def test_a_push_with_other_output_names_is_rejected():
    learner = _trained()
    named = builder.build_model(learner, labels=["q0", "q1", "q2", "q3"])
    edge = EdgePredictor(named.SerializeToString())
    reply = edge.swap(builder.build_model(learner).SerializeToString(), "pushed")  # "0".."3"
    assert reply["ok"] is False and reply["code"] == "contract", reply
    assert "output_labels: unit 0 is named 'q0'" in reply["reason"]
    again = builder.build_model(learner, labels=["q0", "q1", "q2", "q3"])
    assert edge.swap(again.SerializeToString(), "pushed")["ok"]


# --- 1: an Embedding network exports from the CLI and from the daemon ----------------------
def test_a_token_id_network_exports_from_the_cli_and_the_daemon(folder):
    from stream_helpers import Served

    from tweenstream.cli import main

    learner = _token_model()
    learner.save(folder / "ids.tsm")
    assert main(["export", str(folder / "ids.tsm"), str(folder / "cli.onnx")]) == 0
    served = Served(learner)
    try:
        reply = served.control.export("daemon.onnx")
        assert reply["state"] == "done", reply
    finally:
        served.stop()
    edge = EdgePredictor.from_file(folder / "cli.onnx")
    assert edge.contract.vocab == 10


def test_the_daemon_answers_bad_token_ids_with_a_code_and_keeps_serving():
    from stream_helpers import Served

    learner = _token_model()
    served = Served(learner)
    try:
        X = np.zeros((2, 6), np.float32)
        X[1, 2] = 10.0
        reply = protocol.unpack(served.control.request(protocol.encode("predict", X),
                                                       "predict")[0])
        assert reply["ok"] is False and reply["code"] == "bad_value", reply
        assert "token ids" in reply["reason"]
        assert served.control.predict(np.zeros((1, 6), np.float32)).shape == (1, 3)
    finally:
        served.stop()
