"""Aggregate learning throughput of one daemon serving 1, 2 and 8 models.

The daemon runs as its own process, declared by a config file of N ``[models.mI]`` tables
(the built-in network of ``serve``, 8 inputs, hidden 32,32, 4 classes, tween mode), each
routed from its own stream. The producer, in this process, sends messages of 1,024 rows to
the N streams in turn; a timed call returns when the daemon has learned them all. The
daemon learns the messages of different models in one drain in parallel, with
``--learner-threads`` threads (1 or 2 here, on a 2-core machine that the producer shares).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from bench.test_daemon import _bound
from tweenstream.stream.client import Control, Producer

ROWS = 1024
SAMPLES = 400_000  # per timed call, spread over the models


@pytest.fixture(scope="module", params=[(1, 1), (2, 1), (2, 2), (8, 1), (8, 2)],
                ids=lambda p: f"{p[0]}models-{p[1]}threads")
def daemon(request):
    models, threads = request.param
    folder = Path(tempfile.mkdtemp(prefix="tsm-", dir="/tmp"))
    tables = "".join(f'[models.m{i}]\nroutes = ["m{i}-*"]\nmode = "tween"\n\n'
                     for i in range(models))
    (folder / "serve.toml").write_text(tables)
    proc = subprocess.Popen([sys.executable, "-m", "tweenstream", "serve", "--config",
                             str(folder / "serve.toml"), "--data", f"ipc://{folder}/data",
                             "--control", f"ipc://{folder}/ctl", "--log", f"{folder}/log",
                             "--learner-threads", str(threads)])
    data, ctl = _bound(folder / "log")
    control = Control(ctl, timeout=60, retries=1)
    control.status()
    yield models, threads, data, control
    control.shutdown()
    proc.wait(timeout=30)
    control.close()
    shutil.rmtree(folder, ignore_errors=True)


def _learned(control: Control) -> int:
    return sum(m["samples_seen"] for m in control.status()["models"].values())


def test_aggregate_learn_throughput(benchmark, daemon):
    models, threads, data, control = daemon
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (ROWS, 8)).astype(np.float32)
    y = (2 * (X[:, 0] > 0) + (X[:, 1] > 0)).astype(np.int64)
    producers = [Producer(data, stream=f"m{i}-0", sndhwm=100_000) for i in range(models)]
    messages = SAMPLES // ROWS

    def send_all() -> None:
        target = _learned(control) + messages * ROWS
        for k in range(messages):
            producers[k % models].learn(X, y)
        while _learned(control) < target:
            time.sleep(0.001)  # polling the daemon's count, bounded by the producer's sends

    benchmark.extra_info.update(table="models", models=models, threads=threads, rows=ROWS,
                                samples=messages * ROWS, op="learn")
    benchmark.pedantic(send_all, rounds=3, iterations=1, warmup_rounds=1)
    for p in producers:
        p.close()
