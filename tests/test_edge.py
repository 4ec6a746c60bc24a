"""The edge predictor: no numba, same protocol, checked atomic hot swaps, rejections."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import quadrant_data
from hostile_models import rebuilt
from onnx import numpy_helper
from stream_helpers import Served

from tweenstream import Dense, Learner, Network
from tweenstream.edge import EdgePredictor
from tweenstream.edge.server import EdgeServer
from tweenstream.export import export
from tweenstream.stream.client import Control, Producer
from tweenstream.stream.protocol import pack, unpack

NET = Network(8, [Dense(16, "tanh"), Dense(4)])
SWAP = pack({"cmd": "swap"})


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp(prefix="tse-", dir="/tmp"))  # ipc paths must be short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _model(folder: Path, name: str, seed: int = 0, net: Network = NET) -> tuple[Learner, Path]:
    learner = Learner(net, mode="backprop", seed=seed)
    learner.learn_many(*quadrant_data(2000, seed=seed, n_features=net.n_inputs))
    path = folder / name
    export(learner, path)
    return learner, path


def _edited(path: Path, out: Path, change) -> bytes:
    """A copy of an export with one initializer changed and its checksum made to match."""
    def edit(model: onnx.ModelProto) -> None:
        init = model.graph.initializer[0]
        arr = numpy_helper.to_array(init).copy()
        change(arr)
        init.CopyFrom(numpy_helper.from_array(arr, init.name))

    out.write_bytes(rebuilt(onnx.load(path), edit))
    return out.read_bytes()


class Edge:
    """An EdgeServer in a thread over ipc."""

    def __init__(self, model: Path, folder: Path, watch: Path | None = None) -> None:
        self.server = EdgeServer(EdgePredictor.from_file(model), f"ipc://{folder}/edge",
                                 watch=watch, poll_ms=5, log=open(folder / "edge.log", "w"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert self.server.ready.wait(30)
        self.control = Control(self.server.bound, timeout=20, retries=1)

    def close(self) -> None:
        self.control.shutdown()
        self.thread.join(20)
        self.control.close()
        assert not self.thread.is_alive()


def test_edge_never_imports_numba(folder):
    _, path = _model(folder, "m.onnx")
    script = textwrap.dedent(f"""
        import sys
        class NoNumba:
            def find_spec(self, name, path=None, target=None):
                if name == "numba" or name.startswith("numba."):
                    raise ImportError("numba is not installed here")
        sys.meta_path.insert(0, NoNumba())
        import numpy as np
        from tweenstream.edge import EdgePredictor
        from tweenstream.edge.server import EdgeServer
        from tweenstream.cli import _parser
        _parser().parse_args(["edge", "m.onnx"])
        edge = EdgePredictor.from_file({str(path)!r})
        out = edge.predict(np.zeros((3, 8), np.float32))
        assert out.shape == (3, 4), out.shape
        assert edge.swap(open({str(path)!r}, "rb").read(), "again")["ok"]
        assert "numba" not in sys.modules
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_predictions_match_the_engine_over_the_protocol(folder):
    learner, path = _model(folder, "m.onnx")
    edge = Edge(path, folder)
    try:
        X, _ = quadrant_data(64, seed=9)
        assert np.abs(edge.control.predict(X) - learner.predict_proba_many(X)).max() <= 1e-5
        assert np.abs(edge.control.predict(X[:1]) - learner.predict_proba_many(X[:1])).max() \
            <= 1e-5
        status = edge.control.status()
        assert status["requests"] == 2 and status["model"]["inputs"] == 8
        # latency: whole requests (receive to send); inference_latency: onnxruntime alone
        assert {"p50_us", "p99_us", "p999_us", "count"} == set(status["latency"])
        assert status["latency"]["count"] == status["inference_latency"]["count"] == 2
        assert status["latency"]["p50_us"] >= status["inference_latency"]["p50_us"]
        with pytest.raises(ValueError, match="wrong_shape"):
            edge.control.predict(np.zeros((1, 5), np.float32))
        assert edge.control.call("dance")["code"] == "unknown_command"
    finally:
        edge.close()


def test_hot_swap_pushed_by_path_and_by_watch(folder):
    first, path = _model(folder, "a.onnx", seed=0)
    second, other = _model(folder, "b.onnx", seed=1)
    third, watched_src = _model(folder, "c.onnx", seed=2)
    watched = folder / "watched.onnx"
    shutil.copy(path, watched)
    edge = Edge(path, folder, watch=watched)
    X, _ = quadrant_data(16, seed=5)
    try:
        reply = edge.control.request([SWAP, other.read_bytes()], "swap")
        assert unpack(reply[0])["ok"]
        assert np.abs(edge.control.predict(X) - second.predict_proba_many(X)).max() <= 1e-5
        assert edge.control.call("swap", path=str(path))["ok"]
        assert np.abs(edge.control.predict(X) - first.predict_proba_many(X)).max() <= 1e-5
        tmp = folder / "incoming.onnx"
        shutil.copy(watched_src, tmp)
        tmp.replace(watched)  # atomic rename, as a deployment would do
        deadline = 2000
        while edge.control.status()["swaps"] < 3 and deadline:
            deadline -= 1  # each status round trip lets the server look at the file again
        assert np.abs(edge.control.predict(X) - third.predict_proba_many(X)).max() <= 1e-5
    finally:
        edge.close()


@pytest.mark.parametrize("make, code", [
    (lambda f, p: b"\x08\x07garbage" * 10, "corrupt"),
    (lambda f, p: p.read_bytes()[:-40], "corrupt"),
    (lambda f, p: _model(f, "wide.onnx", net=Network(9, [Dense(4)]))[1].read_bytes(), "contract"),
    (lambda f, p: _edited(p, f / "nan.onnx", lambda a: a.fill(np.nan)), "non_finite"),
    (lambda f, p: _tampered(p), "checksum"),
])
def test_bad_models_are_rejected_and_the_old_one_keeps_serving(folder, make, code):
    _, path = _model(folder, "m.onnx")
    edge = Edge(path, folder)
    X, _ = quadrant_data(8, seed=1)
    try:
        before = edge.control.predict(X)
        reply = edge.control.request([SWAP, make(folder, path)], "swap")
        answer = unpack(reply[0])
        assert answer["ok"] is False and answer["code"] == code, answer
        assert np.array_equal(edge.control.predict(X), before)
        status = edge.control.status()
        assert status["rejections"] == {code: 1} and status["last_rejection"]["code"] == code
    finally:
        edge.close()


def _tampered(path: Path) -> bytes:
    model = onnx.load(path)
    init = model.graph.initializer[0]
    arr = numpy_helper.to_array(init).copy()
    arr.flat[0] += 1.0
    init.CopyFrom(numpy_helper.from_array(arr, init.name))  # checksum left as it was
    return model.SerializeToString()


def test_daemon_exports_and_pushes_to_a_running_edge(folder):
    _, path = _model(folder, "start.onnx")
    edge = Edge(path, folder)
    served = Served(Learner(NET, mode="tween", seed=4),
                    push_targets={"edge": edge.server.bound})
    try:
        X, y = quadrant_data(20_000, seed=6)
        with Producer(served.config.data) as p:
            for i in range(0, 20_000, 1000):
                p.learn(X[i:i + 1000], y[i:i + 1000])
        served.wait(lambda s: s["samples_seen"] == 20_000)
        reply = served.control.export("trained.onnx", push="edge")
        assert reply["state"] == "done" and reply["pushed"]["ok"], reply
        Xt, _ = quadrant_data(50, seed=7)
        daemon_says = served.control.predict(Xt)
        assert np.abs(edge.control.predict(Xt) - daemon_says).max() <= 1e-5
        assert edge.control.status()["model"]["samples_learned"] == 20_000
    finally:
        served.stop()
        edge.close()


def test_edge_cli_refuses_a_bad_model(tmp_path, capsys):
    from tweenstream.cli import main

    (tmp_path / "bad.onnx").write_bytes(b"nope")
    assert main(["edge", str(tmp_path / "bad.onnx")]) == 2
    assert "corrupt: not an ONNX model" in capsys.readouterr().err


def test_no_request_fails_during_swaps(folder):
    first, a = _model(folder, "a.onnx", seed=0)
    second, b = _model(folder, "b.onnx", seed=1)
    edge = Edge(a, folder)
    X, _ = quadrant_data(1, seed=2)
    allowed = [first.predict_proba_many(X), second.predict_proba_many(X)]
    answers: list[np.ndarray] = []

    def ask() -> None:
        with Control(edge.server.bound, timeout=20, retries=1) as c:
            for _ in range(300):
                answers.append(c.predict(X))

    asker = threading.Thread(target=ask)
    asker.start()
    models = [a.read_bytes(), b.read_bytes()]
    for i in range(20):
        assert unpack(edge.control.request([SWAP, models[i % 2]], "swap")[0])["ok"]
    asker.join(60)
    edge.close()
    assert len(answers) == 300
    assert all(min(np.abs(got - want).max() for want in allowed) <= 1e-5 for got in answers)
