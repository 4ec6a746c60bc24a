"""Refinement in the daemon: a heuristic-tween stream that plateaus is refined by backprop in a
background thread, swapped back without losing a sample, and the phase change is reported."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time

import numpy as np
import pytest
from stream_helpers import Served, ServerThread

from tweenstream import Dense, Learner, Network
from tweenstream.runtime.drift import PageHinkley
from tweenstream.runtime.refine import RefineSettings
from tweenstream.stream.client import Control, Producer
from tweenstream.stream.refinement import Refinement


def _xor(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    return X, ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)


def _finish(refinement: Refinement, learner: Learner, timeout: float = 60.0) -> dict:
    """Poll until the job is done and checked; fail (not hang) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (event := refinement.poll(learner)) is None:
        assert time.monotonic() < deadline, "the refinement did not finish"
    return event


def _send(served: Served, X, y, start_seq: int) -> None:
    with Producer(served.config.data, stream="x", start_seq=start_seq) as p:
        for i in range(0, len(y), 1_000):
            p.learn(X[i:i + 1_000], y[i:i + 1_000])


@pytest.mark.parametrize("where", ["in-process", "server"])
def test_refinement_lifts_a_plateaued_stream_and_loses_no_sample(where):
    learner = Learner(Network(4, [Dense(16, "tanh"), Dense(2)]), mode="tween-heuristic",
                      seed=0, reservoir_size=4_000)
    server = ServerThread() if where == "server" else None
    refinement = Refinement(RefineSettings(optimizer="adam", learning_rate=0.01, epochs=40,
                                           patience=5, threads=2),
                            after="backprop", server=server and server.endpoint)
    served = Served(learner, refinement=refinement)
    try:
        X, y = _xor(30_000, 0)
        _send(served, X[:10_000], y[:10_000], 0)
        before = served.wait(lambda s: s["samples_seen"] == 10_000)
        assert before["streams"]["x"]["recent_accuracy"] < 0.6  # the heuristic plateau on XOR
        reply = served.control.call("refine")
        assert reply["ok"] and reply["samples"] == 4_000
        _send(served, X[10_000:20_000], y[10_000:20_000], 10)  # learning goes on meanwhile
        done = served.wait(lambda s: s["refinement"]["accepted"] == 1, timeout=120)
        assert done["phase"] == "backprop" and done["refinement"]["last"]["phase"] == "backprop"
        _send(served, X[20_000:], y[20_000:], 20)
        after = served.wait(lambda s: s["samples_seen"] == 30_000)
        assert after["streams"]["x"]["recent_accuracy"] > 0.85  # stated margin: +0.25 or more
        assert after["streams"]["x"]["samples"] == 30_000 and after["streams"]["x"]["gaps"] == 0
        assert after["refinement"]["failed"] == after["refinement"]["fallbacks"] == 0
        if server is not None:
            assert server.server.done == 1  # the job ran there, not here
    finally:
        served.stop()
        if server is not None:
            server.stop()


def test_refinement_triggers_and_refusals():
    learner = Learner(Network(4, [Dense(8, "tanh"), Dense(2)]), seed=0, reservoir_size=300)
    every = Refinement(RefineSettings(epochs=2), every=1_000, min_samples=300)
    X, y = _xor(1_000, 1)
    assert every.observe(learner, 1_000, 0.5)["code"] == "no_data"  # empty reservoir: refused
    learner.learn_many(X, y)
    assert every.observe(learner, 1, 0.5)["ok"] and every.running
    _finish(every, learner)
    assert every.started == 1 and every.accepted + every.rejected == 1
    drift = Refinement(RefineSettings(epochs=1), drift=PageHinkley(0.01, 0.5, 5),
                       min_samples=100)
    assert not any(drift.observe(learner, 10, 0.2) for _ in range(20))
    started = [drift.observe(learner, 10, 0.9) for _ in range(20)]
    assert any(s and s["ok"] and s["started"] == "drift" for s in started)
    no_reservoir = Learner(Network(4, [Dense(2)]))
    reply = Refinement(RefineSettings()).start(no_reservoir, "command")
    assert reply["code"] == "no_data"


def _status(endpoint: str) -> dict:
    with Control(endpoint, timeout=20.0, retries=1) as c:
        return c.call("status")


def test_killing_the_refine_server_mid_job_costs_one_failure_and_no_sample(tmp_path):
    import os
    import subprocess
    import sys

    folder = tempfile.mkdtemp(prefix="ts-", dir="/tmp")  # ipc paths must be short
    endpoint = f"ipc://{folder}/refine"
    proc = subprocess.Popen([sys.executable, "-m", "tweenstream", "refine-server", "--endpoint",
                             endpoint, "--threads", "1", "--max-seconds", "120"],
                            stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    learner = Learner(Network(4, [Dense(16, "tanh"), Dense(2)]), seed=0, reservoir_size=2_000)
    # a job far longer than the test: it is still running when the server dies
    long = RefineSettings(epochs=1_000, patience=1_000, batch_size=1, threads=1)
    refinement = Refinement(long, server=endpoint, timeout=5.0, job_timeout=120.0)
    served = Served(learner, refinement=refinement)
    try:
        assert json.loads(proc.stdout.readline())["event"] == "serving"
        X, y = _xor(6_000, 2)
        _send(served, X[:3_000], y[:3_000], 0)
        first = served.wait(lambda s: s["samples_seen"] == 3_000)
        assert served.control.call("refine")["ok"]
        deadline = time.monotonic() + 60
        while _status(endpoint)["running"] != 1:  # the server has the job and works on it
            assert time.monotonic() < deadline and proc.poll() is None
        assert served.control.call("refine")["code"] == "busy"  # one job at a time
        proc.kill()
        proc.wait(20)
        _send(served, X[3_000:], y[3_000:], 3)  # the stream goes on while the job is lost
        done = served.wait(lambda s: s["refinement"]["failed"] == 1 and not
                           s["refinement"]["running"], timeout=30)
        assert "silent" in done["refinement"]["last"]["reason"]
        after = served.wait(lambda s: s["samples_seen"] == 6_000)
        assert after["streams"]["x"]["samples"] == 6_000 and after["streams"]["x"]["gaps"] == 0
        assert after["refinement"]["accepted"] == 0 and after["phase"] == first["phase"]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        served.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_unreachable_server_falls_back_to_in_process():
    folder = tempfile.mkdtemp(prefix="ts-", dir="/tmp")
    learner = Learner(Network(4, [Dense(8, "tanh"), Dense(2)]), seed=0, reservoir_size=500)
    X, y = _xor(1_000, 3)
    learner.learn_many(X, y)
    refinement = Refinement(RefineSettings(epochs=3, optimizer="adam"),
                            server=f"ipc://{folder}/nobody", timeout=0.2)
    try:
        assert refinement.start(learner, "command")["ok"]
        event = _finish(refinement, learner)
        assert refinement.fallbacks == 1 and refinement.failed == 0
        assert event["event"] in ("refine_accepted", "refine_rejected")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("params", [np.zeros(7, np.float32), np.full(58, 3e38, np.float32),
                                    np.full(58, np.nan, np.float32)])
def test_a_bad_result_is_rejected_not_raised(monkeypatch, params):
    from tweenstream.runtime.refine import RefineResult
    from tweenstream.stream import refinement as module

    def bad(learner, X, Y, settings, progress=None):
        return RefineResult(params, {"loss": 1.0}, {"loss": 0.1}, 1, False, 1.0)

    monkeypatch.setattr(module, "refine", bad)
    learner = Learner(Network(4, [Dense(8, "tanh"), Dense(2)]), seed=0, reservoir_size=300)
    learner.learn_many(*_xor(600, 5))
    before = learner.arena.params.copy()
    refinement = Refinement(RefineSettings())
    assert refinement.start(learner, "command")["ok"]
    assert _finish(refinement, learner)["event"] == "refine_rejected"
    assert refinement.rejected == 1 and np.array_equal(learner.arena.params, before)


def test_a_plateau_of_the_prequential_accuracy_starts_a_job():
    from tweenstream.runtime.drift import Plateau

    learner = Learner(Network(4, [Dense(8, "tanh"), Dense(2)]), seed=0, reservoir_size=300)
    learner.learn_many(*_xor(600, 6))
    flat = Refinement(RefineSettings(epochs=1), plateau=Plateau(100, 0.01, 2), min_samples=100)
    rising = [flat.observe(learner, 100, 0.5, 0.5 + 0.05 * i) for i in range(5)]
    assert not any(rising)  # still improving by more than the minimum gain
    started = [flat.observe(learner, 100, 0.5, 0.7) for _ in range(3)]
    assert started[0] is None and started[2] is None  # one stale window, then a fresh count
    assert started[1]["ok"] and started[1]["started"] == "plateau"
    _finish(flat, learner)
    assert flat.summary()["plateau_detections"] == 1


def test_serve_flags_build_the_refinement():
    from tweenstream.cli import _parser
    from tweenstream.stream.refine_commands import refinement_from_args

    args = _parser().parse_args(["serve", "--reservoir", "500", "--refine-plateau", "1000",
                                 "--refine-drift", "--refine-every", "9000",
                                 "--refine-server", "tcp://127.0.0.1:9", "--after-refine",
                                 "backprop", "--refine-optimizer", "sgd"])
    r = refinement_from_args(args)
    assert (r.every, r.after, r.server, r.settings.optimizer) == (9000, "backprop",
                                                                   "tcp://127.0.0.1:9", "sgd")
    assert r.plateau.window == 1000 and r.drift is not None
    assert refinement_from_args(_parser().parse_args(["serve"])) is None


def test_the_swap_keeps_what_was_learned_while_the_job_ran(monkeypatch):
    from tweenstream.runtime.refine import RefineResult
    from tweenstream.stream import refinement as module

    gate = threading.Event()

    def shifted(learner, X, Y, settings, progress=None):  # "refined" = snapshot + 0.01
        gate.wait(60)
        return RefineResult(learner.arena.params + np.float32(0.01), {"loss": 1.0},
                            {"loss": 0.5}, 1, False, 1.0)

    monkeypatch.setattr(module, "refine", shifted)
    monkeypatch.setattr(module, "evaluate", lambda *args: {"loss": 0.0})  # the check passes
    learner = Learner(Network(4, [Dense(8, "tanh"), Dense(2)]), seed=0, reservoir_size=300)
    X, y = _xor(2_000, 8)
    learner.learn_many(X[:1_000], y[:1_000])
    snapshot = learner.arena.params.copy()
    refinement = Refinement(RefineSettings())
    assert refinement.start(learner, "command")["ok"]
    learner.learn_many(X[1_000:], y[1_000:])  # learning goes on while the job runs
    current = learner.arena.params.copy()
    assert not np.array_equal(current, snapshot)
    gate.set()
    assert _finish(refinement, learner)["event"] == "refine_accepted"
    expected = (snapshot + np.float32(0.01)) + (current - snapshot)
    np.testing.assert_allclose(learner.arena.params, expected, rtol=0, atol=1e-6)
