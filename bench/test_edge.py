"""Edge latency: onnxruntime (in-process and over ipc) against the engine's compiled forward,
single sample and batch of 64, fp32 and int8, for shapes A, B and C.

Each shape is first trained for a few thousand samples on a learnable synthetic task (labels
from a fixed random linear map), so the int8 accuracy change is measured on a real model.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from tweenstream import Dense, Learner, Network
from tweenstream.edge import EdgePredictor
from tweenstream.edge.server import EdgeServer
from tweenstream.export import export
from tweenstream.export.format import session
from tweenstream.stream.client import Control

SHAPES = {"A": (8, (32, 32), 4), "B": (64, (128, 128), 10), "C": (784, (256, 128), 10)}
TRAIN = {"A": 20_000, "B": 10_000, "C": 3_000}


def _task(n_in: int, k: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in)).astype(np.float32)
    W = np.random.default_rng(99).standard_normal((n_in, k))
    return X, (X @ W).argmax(axis=1)


@pytest.fixture(scope="module", params=list(SHAPES))
def setup(request):
    shape = request.param
    n_in, hidden, k = SHAPES[shape]
    learner = Learner(Network(n_in, [*(Dense(h, "tanh") for h in hidden), Dense(k)]),
                      mode="backprop", seed=0)
    learner.learn_many(*_task(n_in, k, TRAIN[shape], 0))
    folder = Path(tempfile.mkdtemp(prefix="tsbe-", dir="/tmp"))
    report = export(learner, folder / "m.onnx", int8=True, check_data=_task(n_in, k, 2000, 1))
    server = EdgeServer(EdgePredictor.from_file(folder / "m.onnx"), f"ipc://{folder}/edge",
                        log=open(folder / "log", "w"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    server.ready.wait(30)
    control = Control(server.bound, timeout=20, retries=1)
    yield shape, learner, folder, report, control
    control.shutdown()
    thread.join(20)
    control.close()
    shutil.rmtree(folder, ignore_errors=True)


def _info(benchmark, shape: str, how: str, batch: int, extra: dict | None = None) -> None:
    benchmark.extra_info.update(table="edge", shape=shape, how=how, batch=batch, samples=1,
                                **(extra or {}))


@pytest.mark.parametrize("batch", [1, 64])
def test_engine_forward(benchmark, setup, batch):
    shape, learner, *_ = setup
    X = np.zeros((batch, learner.network.n_inputs), np.float32)
    _info(benchmark, shape, "engine", batch)
    if batch == 1:
        benchmark(learner.predict_one, X[0])
    else:
        benchmark(learner.predict_proba_many, X)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("batch", [1, 64])
def test_onnxruntime_in_process(benchmark, setup, batch, precision):
    shape, learner, folder, report, _ = setup
    name = "m.onnx" if precision == "fp32" else "m.int8.onnx"
    sess = session((folder / name).read_bytes())
    X = np.zeros((batch, learner.network.n_inputs), np.float32)
    extra = {}
    if precision == "int8" and batch == 1:
        q = report["int8"]
        extra = {"fp32_bytes": report["bytes"], "int8_bytes": q["bytes"],
                 "fp32_accuracy": q["fp32"], "int8_accuracy": q["int8"]}
    _info(benchmark, shape, f"ort-{precision}", batch, extra)
    benchmark(sess.run, None, {"input": X})


@pytest.mark.parametrize("batch", [1, 64])
def test_edge_over_ipc(benchmark, setup, batch):
    shape, learner, _, _, control = setup
    X = np.zeros((batch, learner.network.n_inputs), np.float32)
    _info(benchmark, shape, "edge-ipc", batch)
    benchmark(control.predict, X)
