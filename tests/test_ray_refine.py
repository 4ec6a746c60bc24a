"""Refinement jobs on a Ray cluster (a local instance of 2 CPUs on loopback): the same result
as threads, a daemon refined through a Ray refine-server, a worker killed mid-job, a cluster
out of reach, and several jobs at once."""

from __future__ import annotations

import os
import signal
from functools import partial

import numpy as np
import pytest
from stream_helpers import RAY_LISTENERS, Served, ServerThread, is_loopback
from test_refine_server import _ask, _job, _wait_for
from test_stream_refine import _send, _xor

from tweenstream import Dense, Learner, Network
from tweenstream.runtime.refine import RefineSettings, refine
from tweenstream.stream import protocol
from tweenstream.stream.client import Control
from tweenstream.stream.ray_refine import RayWorkers
from tweenstream.stream.refine_server import job_frames, refine_remote
from tweenstream.stream.refinement import Refinement

pytestmark = pytest.mark.usefixtures("ray_local")


def test_the_local_ray_instance_listens_on_loopback_only():
    assert RAY_LISTENERS, "no listening socket seen for the Ray instance"
    assert all(is_loopback(address) for address, _ in RAY_LISTENERS), RAY_LISTENERS


def _ray_server(count: int = 2, address: str | None = None, **options) -> ServerThread:
    return ServerThread(workers=partial(RayWorkers, count, address, 0.5), **options)


def test_a_ray_refine_server_gives_what_two_threads_give_in_process():
    server = _ray_server(2)
    try:
        model, X, y = _job(4)
        settings = RefineSettings(epochs=3, threads=2, seed=1, learning_rate=0.05)
        with Control(server.endpoint, timeout=20, retries=1) as c:
            remote = refine_remote(c, "r", model, X, y, settings, job_timeout=120)
            status = _ask(c, [protocol.pack({"cmd": "status"})])
        assert np.array_equal(remote.params, refine(model, X, y, settings).params)
        assert status["backend"] == "workers" and status["fallbacks"] == 0
        assert status["done"] == 1
    finally:
        server.stop()


def test_a_daemon_is_refined_through_a_ray_refine_server_and_loses_no_sample():
    server = _ray_server(2)
    learner = Learner(Network(4, [Dense(16, "tanh"), Dense(2)]), mode="tween-heuristic",
                      seed=0, reservoir_size=2_000)
    refinement = Refinement(RefineSettings(optimizer="adam", learning_rate=0.02, epochs=15,
                                           patience=5, batch_size=128),
                            after="backprop", server=server.endpoint)
    served = Served(learner, refinement=refinement)
    try:
        X, y = _xor(12_000, 0)
        _send(served, X[:6_000], y[:6_000], 0)
        served.wait(lambda s: s["samples_seen"] == 6_000)
        assert served.control.call("refine")["ok"]
        _send(served, X[6_000:9_000], y[6_000:9_000], 6)  # learning goes on meanwhile
        done = served.wait(lambda s: s["refinement"]["accepted"] == 1, timeout=120)
        assert done["phase"] == "backprop" and done["refinement"]["fallbacks"] == 0
        _send(served, X[9_000:], y[9_000:], 9)
        after = served.wait(lambda s: s["samples_seen"] == 12_000)
        assert after["streams"]["x"]["recent_accuracy"] > 0.85
        assert after["streams"]["x"]["gaps"] == 0 and server.server.done == 1
    finally:
        served.stop()
        server.stop()


def test_a_worker_killed_mid_job_fails_that_job_and_the_next_job_runs():
    server = _ray_server(2)  # one of two actors dies
    try:
        model, X, y = _job(5)
        long = RefineSettings(epochs=1_000, patience=1_000, batch_size=8)
        with Control(server.endpoint, timeout=20, retries=1) as c:
            assert _ask(c, job_frames("long", model, X, y, long))["code"] == "queued"
            _wait_for(c, "long", lambda h: h["code"] == "running" and h["progress"])
            os.kill(server.server.job_workers[0].pids()[1], signal.SIGKILL)
            failed = protocol.unpack(_wait_for(c, "long", lambda h: not h["ok"])[0])
            assert failed["code"] == "job_failed" and "lost mid-job" in failed["reason"]
            short = RefineSettings(epochs=2, threads=2, learning_rate=0.05)
            result = refine_remote(c, "next", model, X, y, short, job_timeout=120)
        assert np.array_equal(result.params, refine(model, X, y, short).params)
        assert server.server.failed == 1 and server.server.done == 1
    finally:
        server.stop()


def test_a_cluster_out_of_reach_falls_back_to_threads():
    server = _ray_server(2, address="127.0.0.1:1")  # nothing listens on port 1
    try:
        model, X, y = _job(6)
        settings = RefineSettings(epochs=2, threads=2, learning_rate=0.05)
        with Control(server.endpoint, timeout=20, retries=1) as c:
            result = refine_remote(c, "f", model, X, y, settings, job_timeout=120)
            status = _ask(c, [protocol.pack({"cmd": "status"})])
        assert status["fallbacks"] == 1 and status["failed"] == 0
        assert np.array_equal(result.params, refine(model, X, y, settings).params)
    finally:
        server.stop()


def test_two_jobs_run_at_once_each_on_its_own_workers():
    server = _ray_server(1, max_running=2)
    try:
        long = RefineSettings(epochs=1_000, patience=1_000, batch_size=8)
        with Control(server.endpoint, timeout=20, retries=1) as c:
            for name, seed in (("a", 7), ("b", 8)):
                model, X, y = _job(seed)
                assert _ask(c, job_frames(name, model, X, y, long))["code"] == "queued"
            for name in ("a", "b"):  # each has finished an epoch on its actors
                _wait_for(c, name, lambda h: h["code"] == "running" and h["progress"])
            assert _ask(c, [protocol.pack({"cmd": "status"})])["running"] == 2
            pids = [w.pids()[0] for w in server.server.job_workers]
            assert len(set(pids)) == 2  # each job on its own actor
            for name in ("a", "b"):
                assert _ask(c, [protocol.pack({"cmd": "cancel", "job": name})])["ok"]
    finally:
        server.stop()


def test_the_cli_serves_with_ray_and_falls_back_when_the_cluster_is_away():
    import json
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "tweenstream", "refine-server", "--endpoint",
                             "tcp://127.0.0.1:*", "--ray", "127.0.0.1:1", "--ray-workers", "2",
                             "--max-seconds", "60"], stdout=subprocess.PIPE, text=True)
    try:
        endpoint = json.loads(proc.stdout.readline())["endpoint"]
        model, X, y = _job(9)
        settings = RefineSettings(epochs=2, threads=1, learning_rate=0.05)
        with Control(endpoint, timeout=60, retries=1) as c:
            result = refine_remote(c, "cli", model, X, y, settings, job_timeout=120)
            status = _ask(c, [protocol.pack({"cmd": "status"})])
        assert status["fallbacks"] == 1 and status["done"] == 1
        assert np.array_equal(result.params, refine(model, X, y, settings).params)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
