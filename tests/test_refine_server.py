"""The refine-server: jobs from several clients queue and finish with progress; every bad
request gets a specific error and the server keeps serving; the CLI refuses bad flags."""

from __future__ import annotations

import time

import numpy as np
import pytest
from stream_helpers import ServerThread

from tweenstream import Dense, Learner, Network
from tweenstream.cli import main
from tweenstream.runtime.refine import RefineSettings
from tweenstream.stream import protocol
from tweenstream.stream.client import Control
from tweenstream.stream.refine_server import job_frames, refine_remote


def _job(seed: int, n: int = 400):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = Learner(Network(3, [Dense(8, "tanh"), Dense(2)]), seed=seed)
    model.learn_many(X[:50], y[:50])  # refinement scales with statistics of the stream
    return model, X, y


@pytest.fixture(params=["threads", "ray"])
def server(request):
    """A refine-server whose jobs run in its threads, or on one Ray actor (a local instance):
    the same requests, the same results."""
    options = {}
    if request.param == "ray":
        request.getfixturevalue("ray_local")
        from functools import partial

        from tweenstream.stream.ray_refine import RayWorkers

        options["workers"] = partial(RayWorkers, 1, None, 0.5)
    s = ServerThread(max_queue=2, **options)
    yield s
    s.stop()


def _ask(control: Control, frames: list[bytes]) -> dict:
    return protocol.unpack(control.request(frames, "test")[0])


def _wait_for(control: Control, job: str, done, timeout: float = 300.0) -> list[bytes]:
    """Ask for a job's result until ``done(reply_header)``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        frames = control.request([protocol.pack({"cmd": "result", "job": job})], "result")
        if done(protocol.unpack(frames[0])):
            return frames
        assert time.monotonic() < deadline, f"job {job} did not get there"


@pytest.fixture
def thread_server():
    """The queue is the server's whatever computes the gradients: tested on threads (Ray jobs
    queue, run at once and fail in tests/test_ray_refine.py)."""
    s = ServerThread(max_queue=2)
    yield s
    s.stop()


def test_jobs_from_two_clients_queue_report_progress_and_can_be_cancelled(thread_server):
    server = thread_server
    long = RefineSettings(epochs=1_000, patience=1_000, batch_size=1)
    short = RefineSettings(epochs=15, learning_rate=0.05, optimizer="adam", patience=15)
    with Control(server.endpoint, timeout=20, retries=1) as a, \
            Control(server.endpoint, timeout=20, retries=1) as b:
        model_a, Xa, ya = _job(0)
        model_b, Xb, yb = _job(1)
        assert _ask(a, job_frames("a", model_a, Xa, ya, long))["position"] == 0
        reply = _ask(b, job_frames("b", model_b, Xb, yb, short))
        assert reply["code"] == "queued" and reply["position"] == 1
        running = _wait_for(a, "a", lambda h: h["code"] == "running" and h["progress"])
        progress = protocol.unpack(running[0])["progress"]
        assert progress["epochs"] == 1_000 and progress["epoch"] >= 1 and "loss" in progress
        busy = _ask(b, job_frames("c", model_b, Xb, yb, short))
        assert busy["code"] == "busy"  # max_queue=2: "a" runs for minutes, "b" waits
        status = _ask(a, [protocol.pack({"cmd": "status"})])
        assert (status["running"], status["queued"]) == (1, 1)
        assert _ask(a, [protocol.pack({"cmd": "cancel", "job": "a"})])["code"] == "cancelled"
        failed = _wait_for(a, "a", lambda h: not h["ok"])
        assert protocol.unpack(failed[0])["code"] == "job_failed"
        frames = _wait_for(b, "b", lambda h: h["code"] == "done")
        head, params = protocol.unpack(frames[0]), np.frombuffer(frames[1], "<f4")
        assert params.shape == model_b.arena.params.shape and np.isfinite(params).all()
        assert head["after"]["loss"] < head["before"]["loss"]
        assert head["after"]["accuracy"] > 0.85
        assert _ask(b, [protocol.pack({"cmd": "result", "job": "b"})])["code"] == "unknown_job"
    assert server.server.done == 1


def test_refine_remote_matches_the_in_process_result(server):
    from tweenstream.runtime.refine import refine

    model, X, y = _job(2)
    settings = RefineSettings(epochs=4, threads=1, seed=3)
    with Control(server.endpoint, timeout=20, retries=1) as c:
        remote = refine_remote(c, "same", model, X, y, settings, job_timeout=60)
    local = refine(model, X, y, settings)
    assert np.array_equal(remote.params, local.params)  # the same seeds and order
    assert remote.after == local.after


def test_a_remote_job_trains_on_the_learners_loss(thread_server):
    """A regression learner with the cosine hybrid: its job carries the loss, so the remote
    result is the in-process one; the same job without the loss (as an older client sends
    it) trains on squared error and ends elsewhere."""
    from tweenstream.runtime.refine import refine

    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    Y = (X @ rng.normal(size=(4, 3)) * rng.uniform(0.5, 2, (300, 1))).astype(np.float32)
    model = Learner(Network(4, [Dense(8, "tanh"), Dense(3)], task="regression"),
                    mode="tween", loss="cosine", cosine_weight=0.9, seed=0)
    model.learn_many(X[:100], Y[:100])
    settings = RefineSettings(epochs=3, threads=1, seed=3)
    assert protocol.unpack(job_frames("j", model, X, Y, settings)[0])["loss"] == {
        "loss": "cosine", "cosine_weight": 0.9}
    frames = job_frames("sq", model, X, Y, settings)
    head = protocol.unpack(frames[0])
    del head["loss"]
    with Control(thread_server.endpoint, timeout=20, retries=1) as c:
        remote = refine_remote(c, "cos", model, X, Y, settings, job_timeout=60)
        assert _ask(c, [protocol.pack(head), *frames[1:]])["code"] == "queued"
        squared = np.frombuffer(_wait_for(c, "sq", lambda h: h["code"] == "done")[1], "<f4")
    local = refine(model, X, Y, settings)
    assert np.array_equal(remote.params, local.params)
    assert not np.allclose(squared, local.params, atol=1e-3)


def _bad_requests(model, X, y):
    good = job_frames("j", model, X, y, RefineSettings())
    head = protocol.unpack(good[0])

    def variant(**changes):
        return [protocol.pack({**head, **changes}), *good[1:]]

    return [
        ([b"\xc1garbage"], "garbage"),
        ([b""], "garbage"),
        ([protocol.pack({"cmd": "fly"})], "unknown_command"),
        ([protocol.pack(["not", "a", "map"])], "garbage"),
        (variant(job=""), "bad_header"),
        (variant(network={"inputs": "x"}), "bad_value"),
        (variant(settings={"epochs": 0}), "bad_value"),
        (variant(settings={"warp": 9}), "bad_value"),
        (variant(settings={"seed": 0.5}), "bad_value"),
        (variant(settings={"beta2": 1.5}), "bad_value"),
        (variant(settings={"epochs": 10**9}), "bad_value"),  # above the server's limit
        (variant(loss={"loss": "hinge"}), "bad_value"),
        (variant(loss={"loss": "cosine", "cosine_weight": 2.0}), "bad_value"),
        (variant(loss={"loss": "cosine", "cosine_weight": True}), "bad_value"),
        (variant(loss={"loss": "cosine"}), "bad_value"),  # a classifier
        (variant(loss=["cosine"]), "bad_value"),
        (variant(loss={"lr": 1}), "bad_value"),
        (variant(arrays={**head["arrays"], "X": {"dtype": "<f4", "shape": [2**32, 2**32]}}),
         "wrong_shape"),
        (good[:2], "truncated"),
        ([good[0], good[1][:-4], *good[2:]], "truncated"),
        (variant(arrays={**head["arrays"], "X": {"dtype": "<f8", "shape": [400, 3]}}),
         "wrong_dtype"),
        (variant(arrays={**head["arrays"], "X": {"dtype": "<f4", "shape": [300, 4]}}),
         "wrong_shape"),
        ([good[0], np.full(model.arena.params.size, np.nan, "<f4").tobytes(), *good[2:]],
         "wrong_shape"),
        ([*good[:3], np.full(len(y), 7, "<i8").tobytes()], "bad_label"),
        ([protocol.pack({"cmd": "result", "job": "nobody"})], "unknown_job"),
        ([protocol.pack({"cmd": "result", "job": ["x"]})], "unknown_job"),
    ]


def test_every_bad_request_gets_a_specific_error_and_the_server_goes_on(server):
    model, X, y = _job(4)
    with Control(server.endpoint, timeout=20, retries=1) as c:
        for frames, code in _bad_requests(model, X, y):
            reply = _ask(c, frames)
            assert reply["ok"] is False and reply["code"] == code, (code, reply)
        assert _ask(c, job_frames("ok", model, X, y, RefineSettings(epochs=1)))["ok"]
        assert _ask(c, job_frames("ok", model, X, y, RefineSettings()))["code"] == "bad_header"
        assert _ask(c, [protocol.pack({"cmd": "status"})])["served"] >= 22
        assert _ask(c, [protocol.pack({"cmd": "cancel", "job": "nobody"})])["code"] == \
            "unknown_job"


def test_cli_refuses_bad_refinement_flags(capsys):
    assert main(["serve", "--refine-every", "100"]) == 2
    assert "--reservoir" in capsys.readouterr().err
    assert main(["refine-server", "--threads", "-1"]) == 2
    assert "--threads" in capsys.readouterr().err
    assert main(["refine-server", "--endpoint", "nonsense://x"]) == 2
    assert "cannot bind" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--reservoir", "0"])
