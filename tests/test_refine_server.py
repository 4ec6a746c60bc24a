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
    return Learner(Network(3, [Dense(8, "tanh"), Dense(2)]), seed=seed), X, y


@pytest.fixture
def server():
    s = ServerThread(max_queue=2)
    yield s
    s.stop()


def _ask(control: Control, frames: list[bytes]) -> dict:
    return protocol.unpack(control.request(frames, "test")[0])


def test_jobs_from_two_clients_queue_and_return_refined_weights(server):
    settings = RefineSettings(epochs=15, learning_rate=0.05, optimizer="adam", patience=15)
    seen: list[dict] = []
    with Control(server.endpoint, timeout=20, retries=1) as a, \
            Control(server.endpoint, timeout=20, retries=1) as b:
        model_a, Xa, ya = _job(0)
        model_b, Xb, yb = _job(1)
        assert _ask(a, job_frames("a", model_a, Xa, ya, settings))["position"] == 0
        assert _ask(b, job_frames("b", model_b, Xb, yb, settings))["code"] == "queued"
        busy = _ask(b, job_frames("c", model_b, Xb, yb, settings))
        assert busy["code"] == "busy"  # max_queue=2 and both still wait or run
        status = _ask(a, [protocol.pack({"cmd": "status"})])
        assert status["queued"] + status["running"] == 2
        results = {}
        deadline = time.monotonic() + 60
        while len(results) < 2:
            assert time.monotonic() < deadline
            for name, control in (("a", a), ("b", b)):
                if name in results:
                    continue
                frames = control.request([protocol.pack({"cmd": "result", "job": name})], "r")
                head = protocol.unpack(frames[0])
                if head["code"] == "done":
                    results[name] = (head, np.frombuffer(frames[1], "<f4"))
                elif head["progress"]:
                    seen.append(head["progress"])
        for name, model in (("a", model_a), ("b", model_b)):
            head, params = results[name]
            assert params.shape == model.arena.params.shape and np.isfinite(params).all()
            assert head["after"]["loss"] < head["before"]["loss"]
            assert head["after"]["accuracy"] > 0.85
        assert _ask(a, [protocol.pack({"cmd": "result", "job": "a"})])["code"] == "unknown_job"
    assert server.server.done == 2
    assert all(p["epochs"] == 15 and 1 <= p["epoch"] <= 15 for p in seen)


def test_refine_remote_matches_the_in_process_result(server):
    from tweenstream.runtime.refine import refine

    model, X, y = _job(2)
    settings = RefineSettings(epochs=4, threads=1, seed=3)
    with Control(server.endpoint, timeout=20, retries=1) as c:
        remote = refine_remote(c, "same", model, X, y, settings, job_timeout=60)
    local = refine(model, X, y, settings)
    assert np.array_equal(remote.params, local.params)  # the same seeds and order
    assert remote.after == local.after


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
        assert _ask(c, [protocol.pack({"cmd": "status"})])["served"] >= 18


def test_cli_refuses_bad_refinement_flags(capsys):
    assert main(["serve", "--refine-every", "100"]) == 2
    assert "--reservoir" in capsys.readouterr().err
    assert main(["refine-server", "--threads", "-1"]) == 2
    assert "--threads" in capsys.readouterr().err
    assert main(["refine-server", "--endpoint", "nonsense://x"]) == 2
    assert "cannot bind" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--reservoir", "0"])
