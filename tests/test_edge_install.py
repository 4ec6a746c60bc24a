"""The edge install, as docs/deployment.md writes it: a wheel of this repository installed without
its dependencies into a fresh virtual environment, plus onnxruntime, numpy, pyzmq and msgpack (no
numba, no onnx). ``tweenstream edge`` starts there and answers a prediction; hostile models
pushed to it are refused by the checks that need no onnx (checksum, finiteness, contract,
session build, smoke run) while it keeps serving; a command that needs the full install says so
instead of a traceback.

The packages come from the registry (pinned to the versions of the running environment, so
pip's cache usually serves them); nothing else is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from helpers import quadrant_data
from hostile_models import fails_when_run, inf_weight, rebuilt, tampered, wrong_width

from tweenstream import Dense, Learner, Network
from tweenstream.export import build_model, export
from tweenstream.stream.client import Control

ROOT = Path(__file__).resolve().parents[1]
EDGE_PACKAGES = ("onnxruntime", "numpy", "pyzmq", "msgpack")


def _run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def edge_env():
    folder = Path(tempfile.mkdtemp(prefix="tsi-", dir="/tmp"))
    try:
        _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
             str(folder / "dist"), str(ROOT))
        wheel = next((folder / "dist").glob("tweenstream-*.whl"))
        _run(sys.executable, "-m", "venv", str(folder / "venv"))
        pip = [str(folder / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        _run(*pip, "--no-deps", str(wheel))
        _run(*pip, *(f"{name}=={version(name)}" for name in EDGE_PACKAGES))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_edge_install_has_no_numba_and_serves(edge_env):
    venv_python = edge_env / "venv" / "bin" / "python"
    probe = _run(str(venv_python), "-c", "import importlib.util as u; "
                 "print(u.find_spec('numba') is None, u.find_spec('onnx') is None, "
                 "u.find_spec('tweenstream') is not None)", cwd=edge_env)
    assert probe.stdout.split() == ["True", "True", "True"]
    learner = Learner(Network(8, [Dense(16, "relu"), Dense(4)]), mode="backprop", seed=0)
    learner.learn_many(*quadrant_data(1000, seed=0))
    export(learner, edge_env / "m.onnx")
    endpoint = f"ipc://{edge_env}/edge"
    start = time.perf_counter()
    proc = subprocess.Popen([str(edge_env / "venv" / "bin" / "tweenstream"), "edge",
                             str(edge_env / "m.onnx"), "--endpoint", endpoint],
                            cwd=edge_env, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ""})
    try:
        X = np.ones((2, 8), np.float32)
        with Control(endpoint, timeout=30, retries=2) as c:
            got = c.predict(X)
            first_reply = time.perf_counter() - start
            np.testing.assert_allclose(got, learner.predict_proba_many(X), atol=1e-5)
            status = c.status()
            assert status["requests"] == 1
            assert status["onnx_checker"].startswith("skipped: the onnx package is not")
            for name, code in _hostile(learner, edge_env).items():
                reply = c.call("swap", path=str(edge_env / name))
                assert (reply["ok"], reply["code"]) == (False, code), (name, reply)
            np.testing.assert_allclose(c.predict(X), got)  # the first model still serves
            assert c.status()["rejections"] == {"corrupt": 1, "checksum": 1, "non_finite": 1,
                                                "runtime": 2}
            c.shutdown()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"edge install: start to first reply {first_reply:.2f} s")  # docs/benchmarks.md


def _hostile(learner: Learner, folder: Path) -> dict[str, str]:
    """Write hostile models beside the good one; name -> the code the edge must refuse it with.
    Without onnx.checker, a graph that disagrees with itself is caught by onnxruntime."""
    model = build_model(learner)
    files = {"garbage.onnx": (b"\x08\x08junk" * 10, "corrupt"),
             "tampered.onnx": (tampered(model), "checksum"),
             "inf.onnx": (rebuilt(model, inf_weight), "non_finite"),
             "width.onnx": (rebuilt(model, wrong_width), "runtime"),
             "run.onnx": (rebuilt(model, fails_when_run), "runtime")}
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: code for name, (_, code) in files.items()}


def test_a_command_that_needs_numba_says_so(edge_env):
    learner = Learner(Network(3, [Dense(2)]), seed=0)
    learner.save(edge_env / "m.tsm")
    out = subprocess.run([str(edge_env / "venv" / "bin" / "tweenstream"), "export",
                          str(edge_env / "m.tsm"), str(edge_env / "x.onnx")],
                         cwd=edge_env, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 2, out.stderr
    assert re.search(r"needs (numba|onnx), which this install lacks", out.stderr), out.stderr
    assert "Traceback" not in out.stderr
