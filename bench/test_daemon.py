"""End-to-end daemon throughput and predict latency (shape A, learning in tween mode).

The daemon runs as its own process (one core), the producer in this one (the other core), so
the figures include encoding, ZeroMQ transport, decoding, validation and learning. Each
timed call sends ``messages`` messages and returns when the daemon has learned them all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tweenstream.stream.client import Control, Producer

SIZES = {1: 10_000, 64: 1_500, 1024: 150}  # rows per message -> messages per timed call


@pytest.fixture(scope="module", params=["ipc", "tcp"])
def daemon(request):
    folder = tempfile.mkdtemp(prefix="tsb-", dir="/tmp")
    if request.param == "ipc":
        data, ctl, extra = f"ipc://{folder}/data", f"ipc://{folder}/ctl", []
    else:  # the system picks the ports; loopback only, so no CURVE for the measurement
        data, ctl, extra = "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", ["--insecure-control"]
    proc = subprocess.Popen([sys.executable, "-m", "tweenstream", "serve", "--data", data,
                             "--control", ctl, "--mode", "tween", "--log", f"{folder}/log",
                             *extra])
    data, ctl = _bound(Path(folder) / "log")
    control = Control(ctl, timeout=60, retries=1)
    control.status()
    yield request.param, data, control
    control.shutdown()
    proc.wait(timeout=30)
    control.close()
    shutil.rmtree(folder, ignore_errors=True)


def _bound(log: Path) -> tuple[str, str]:
    """The endpoints the daemon bound, from its "serving" log line (within 120 s)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines() if log.exists() else []:
            event = json.loads(line)
            if event["event"] == "serving":
                return event["data"], event["control"]
        time.sleep(0.05)
    raise RuntimeError("the daemon did not start")


def _wait_for(control: Control, samples: int) -> None:
    while control.status()["samples_seen"] < samples:
        time.sleep(0.0005)


@pytest.mark.parametrize("rows", SIZES)
def test_learn_throughput(benchmark, daemon, rows):
    transport, data, control = daemon
    messages = SIZES[rows]
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (rows, 8)).astype(np.float32)
    y = (2 * (X[:, 0] > 0) + (X[:, 1] > 0)).astype(np.int64)
    producer = Producer(data, stream=f"{transport}-{rows}", sndhwm=100_000)

    def send_all() -> None:
        target = control.status()["samples_seen"] + rows * messages
        for _ in range(messages):
            producer.learn(X, y)
        _wait_for(control, target)

    benchmark.extra_info.update(table="daemon", transport=transport, rows=rows,
                                samples=rows * messages, op="learn")
    benchmark.pedantic(send_all, rounds=3, iterations=1, warmup_rounds=1)
    producer.close()


def test_predict_latency(benchmark, daemon):
    transport, _, control = daemon
    x = np.zeros((1, 8), np.float32)
    times = []
    for _ in range(3_000):
        t0 = time.perf_counter()
        control.predict(x)
        times.append(time.perf_counter() - t0)
    p50, p99, p999 = np.percentile(np.array(times) * 1e6, [50, 99, 99.9])
    benchmark.extra_info.update(table="daemon", transport=transport, rows=1, samples=1,
                                op="predict", p50=p50, p99=p99, p999=p999)
    benchmark(control.predict, x)


ECHO = """
import sys, zmq
ctx = zmq.Context(); sock = ctx.socket(zmq.ROUTER); sock.bind(sys.argv[1])
print(sock.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
for _ in range(int(sys.argv[2])):
    sock.send_multipart(sock.recv_multipart(copy=False), copy=False)
"""


def test_pyzmq_echo_floor(benchmark, daemon):
    """The transport's floor: a ROUTER in its own process that echoes each request as is, over
    the same transport, with the frames of a one-row predict request (the daemon and the edge
    are compared with this, measured in the same run)."""
    from tweenstream.stream import protocol

    transport, *_ = daemon
    folder = tempfile.mkdtemp(prefix="tse-", dir="/tmp")
    endpoint = f"ipc://{folder}/echo" if transport == "ipc" else "tcp://127.0.0.1:*"
    rounds = 3_000 + 2_000  # the latency loop, then pytest-benchmark's calls: it ends by itself
    proc = subprocess.Popen([sys.executable, "-c", ECHO, endpoint, str(rounds)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        frames = protocol.encode("predict", np.zeros((1, 8), np.float32))
        with Control(endpoint, timeout=10, retries=1) as echo:
            times = []
            for _ in range(3_000):
                t0 = time.perf_counter()
                echo.request(frames, "echo")
                times.append(time.perf_counter() - t0)
            p50, p99, p999 = np.percentile(np.array(times) * 1e6, [50, 99, 99.9])
            benchmark.extra_info.update(table="daemon", transport=transport, rows=1, samples=1,
                                        op="echo", p50=p50, p99=p99, p999=p999)
            benchmark.pedantic(echo.request, (frames, "echo"), rounds=2_000, iterations=1)
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
