"""The daemon as a process: SIGKILL and exact resume, SIGTERM, bounded memory, CURVE."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import zmq.auth
from helpers import quadrant_data
from stream_helpers import Served

from tweenstream import Dense, Learner, Network, load
from tweenstream.stream.client import Control, Producer
from tweenstream.stream.security import Curve

MESSAGE = 1000
N_MESSAGES = 40


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp(prefix="ts-", dir="/tmp"))  # ipc paths must be short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _serve(folder: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tweenstream", "serve", "--data", f"ipc://{folder}/data",
           "--control", f"ipc://{folder}/ctl", "--checkpoint-dir", str(folder / "ck"),
           "--mode", "tween", "--seed", "3", "--log", str(folder / "log"), *extra]
    return subprocess.Popen(cmd)


def _wait(control: Control, done, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = control.status()
        if done(st):
            return st
        assert time.monotonic() < deadline, f"not reached: {st}"
        time.sleep(0.005)  # polling a condition, bounded by the deadline


def _save_and_stop(control: Control, proc: subprocess.Popen) -> None:
    """Save the daemon's model as final.tsm, shut it down, and check it exited 0."""
    assert control.save("final.tsm")["ok"]
    control.shutdown()
    assert proc.wait(timeout=30) == 0


def _assert_learned_once_in_order(folder: Path, X, y, messages: int, rows: int) -> None:
    """The daemon's saved model equals one learner that saw each message once, in order."""
    reference = Learner(Network(8, [Dense(32, "relu"), Dense(32, "relu"), Dense(4)]),
                        mode="tween", seed=3)
    for i in range(messages):
        reference.learn_many(X[i * rows:(i + 1) * rows], y[i * rows:(i + 1) * rows])
    final = load(folder / "ck" / "exports" / "final.tsm")
    assert np.array_equal(final.arena.params, reference.arena.params)
    assert final.state()["samples_seen"] == messages * rows


def test_sigkill_then_resume_is_exact(folder):
    X, y = quadrant_data(N_MESSAGES * MESSAGE, seed=7)
    proc = _serve(folder, "--checkpoint-every", "5000", "--checkpoint-interval", "3600")
    try:
        with Control(f"ipc://{folder}/ctl", timeout=60, retries=1) as control:
            control.status()
            with Producer(f"ipc://{folder}/data", stream="k") as p:
                for i in range(N_MESSAGES):
                    p.learn(X[i * MESSAGE:(i + 1) * MESSAGE], y[i * MESSAGE:(i + 1) * MESSAGE])
                _wait(control, lambda s: s["samples_seen"] >= 20_000)
        proc.send_signal(signal.SIGKILL)  # mid-stream: no goodbye, no final checkpoint
        assert proc.wait(timeout=30) == -signal.SIGKILL
        proc = _serve(folder, "--checkpoint-every", "5000", "--checkpoint-interval", "3600")
        with Control(f"ipc://{folder}/ctl", timeout=60, retries=1) as control:
            st = control.status()
            last = st["streams"]["k"]["last_seq"]
            assert st["samples_seen"] == (last + 1) * MESSAGE >= 5_000  # counters match seq
            assert st["streams"]["k"]["samples"] == st["samples_seen"]
            with Producer(f"ipc://{folder}/data", stream="k") as p:
                for i in range(N_MESSAGES):  # resend everything: the daemon skips what it has
                    p.learn(X[i * MESSAGE:(i + 1) * MESSAGE], y[i * MESSAGE:(i + 1) * MESSAGE])
            st = _wait(control, lambda s: s["streams"]["k"]["last_seq"] == N_MESSAGES - 1
                       and s["streams"]["k"]["duplicates"] == last + 1)
            assert st["samples_seen"] == N_MESSAGES * MESSAGE
            _save_and_stop(control, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_learned_once_in_order(folder, X, y, N_MESSAGES, MESSAGE)


def test_sigterm_finishes_checkpoints_and_exits_zero(folder):
    proc = _serve(folder, "--checkpoint-interval", "3600")
    try:
        with Control(f"ipc://{folder}/ctl", timeout=60, retries=1) as control:
            control.status()
            X, y = quadrant_data(5_000, seed=1)
            with Producer(f"ipc://{folder}/data", stream="t") as p:
                for i in range(5):
                    p.learn(X[i * 1000:(i + 1) * 1000], y[i * 1000:(i + 1) * 1000])
            _wait(control, lambda s: s["samples_seen"] == 5_000)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    newest = sorted((folder / "ck").glob("ckpt-*.tsm"))[-1]
    from tweenstream.runtime.persist import load_parts

    learner, _, arrays = load_parts(newest)
    assert learner.state()["samples_seen"] == 5_000
    assert arrays["stream_names"].tolist() == ["t"] and arrays["stream_ints"][0, 0] == 4
    assert '"event": "stopped"' in (folder / "log").read_text()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_slow_learner_fast_producer_memory_stays_bounded(folder):
    # 784-256-128-10 learns ~60 us per sample: a 1024-row message takes ~60 ms to learn, while
    # the producer can send one (3.2 MB) every ~1 ms. High-water marks of 4 bound the queues.
    proc = _serve(folder, "--inputs", "784", "--hidden", "256,128", "--outputs", "10",
                  "--rcvhwm", "4", "--checkpoint-interval", "3600")
    try:
        with Control(f"ipc://{folder}/ctl", timeout=60, retries=1) as control:
            control.status()
            baseline = _rss_mb(proc.pid)
            rng = np.random.default_rng(0)
            X = rng.standard_normal((1024, 784)).astype(np.float32)
            y = rng.integers(0, 10, 1024)
            with Producer(f"ipc://{folder}/data", sndhwm=4, on_full="drop") as p:
                for _ in range(300):  # ~1 GB if every message were queued somewhere
                    p.learn(X, y)
                peak = _rss_mb(proc.pid)
                dropped, sent = p.dropped, p.sent
            st = control.status()
        assert dropped > 0 and sent + dropped == 300
        assert peak - baseline < 120, (baseline, peak)
        assert st["streams"]["default"]["missing"] >= 0
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_curve_refuses_unknown_producers_and_keeps_admin_for_admin_keys(net_a, folder):
    keys, allowed, admins = folder / "keys", folder / "allowed", folder / "admins"
    for f in (keys, allowed, admins):
        f.mkdir()
    server_public, server_secret = zmq.auth.create_certificates(keys, "server")
    good_public, good_secret = zmq.auth.create_certificates(keys, "good")
    admin_public, admin_secret = zmq.auth.create_certificates(keys, "admin")
    _, bad_secret = zmq.auth.create_certificates(keys, "bad")
    shutil.copy(good_public, allowed)
    shutil.copy(admin_public, admins)
    served = Served(Learner(net_a), curve=Curve.from_files(server_secret, allowed, admins),
                    control_keys=(admin_secret, server_public))
    try:
        X, y = quadrant_data(300, seed=0)
        with Producer(served.config.data, stream="bad", curve_secret=bad_secret,
                      server_public=server_public, send_timeout=0.2, on_full="drop") as p:
            p.learn(X[:100], y[:100])
        with Producer(served.config.data, stream="plain", send_timeout=0.2,
                      on_full="drop") as p:
            p.learn(X[100:200], y[100:200])
        with Producer(served.config.data, stream="good", curve_secret=good_secret,
                      server_public=server_public) as p:
            p.learn(X[200:], y[200:])
        st = served.wait(lambda s: s["samples_seen"] >= 100)
        assert st["samples_seen"] == 100 and set(st["streams"]) == {"good"}
        with Control(served.config.control, timeout=0.3, retries=1) as stranger:
            with pytest.raises(TimeoutError):
                stranger.status()
        with Control(served.config.control, timeout=20, retries=1, curve_secret=good_secret,
                     server_public=server_public) as producer_key:
            assert producer_key.status()["ok"]  # a producer key reads
            assert producer_key.predict(X[:2]).shape == (2, 4)
            for cmd in ("shutdown", "set-phase", "save", "export", "checkpoint", "refine",
                        "reset-stream"):
                reply = producer_key.call(cmd)
                assert reply["code"] == "forbidden" and "--admin-keys" in reply["reason"]
        assert served.control.checkpoint()["ok"]  # the admin key may
    finally:
        served.stop()


def test_curve_without_an_allow_list_is_refused(folder):
    _, secret = zmq.auth.create_certificates(folder, "server")
    with pytest.raises(ValueError, match="--curve-secret needs --allow-keys DIR"):
        Curve.from_files(secret, None)
    assert Curve.from_files(secret, None, allow_any=True).callback("*", b"x" * 40)


def test_curve_flag_errors(folder):
    with pytest.raises(ValueError, match=r"--curve-secret .*: no such file"):
        Curve.from_files(folder / "none", None)
    public, _ = zmq.auth.create_certificates(folder, "x")
    with pytest.raises(ValueError, match="holds no secret key"):
        Curve.from_files(public, None)
    _, secret = zmq.auth.create_certificates(folder, "y")
    with pytest.raises(ValueError, match=r"--allow-keys .*: not a folder"):
        Curve.from_files(secret, folder / "missing")


def test_serve_rejects_bad_flags(capsys):
    from tweenstream.cli import main

    assert main(["serve", "--model", "/nonexistent.tsm"]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert main(["serve", "--activation", "relu7"]) == 2
    assert "unknown activation 'relu7'" in capsys.readouterr().err
    assert main(["serve", "--allow-keys", "/tmp"]) == 2
    assert "--allow-keys, --admin-keys and --allow-any-key need --curve-secret" \
        in capsys.readouterr().err


def test_twenty_kills_under_a_live_producer_end_bit_identical(folder):
    """kill -9 twenty times while a resending producer streams; strict order and seq dedupe
    make the result equal, bit for bit, to one learner that saw the stream once, in order."""
    n, rows = 400, 50
    X, y = quadrant_data(n * rows, seed=11)
    flags = ("--strict-order", "--checkpoint-every", "400", "--checkpoint-interval", "3600")
    kill_at = set(np.random.default_rng(5).choice(np.arange(12, n - 5), 20, replace=False))
    proc = _serve(folder, *flags)
    kills = 0
    try:
        with Producer(f"ipc://{folder}/data", stream="k", control=f"ipc://{folder}/ctl",
                      control_timeout=60) as p:
            for i in range(n):
                p.learn(X[i * rows:(i + 1) * rows], y[i * rows:(i + 1) * rows])
                if i == 10:  # the stream is in a checkpoint before the first kill
                    deadline = time.monotonic() + 60
                    while p.acked()["durable_through"] < 0:
                        assert time.monotonic() < deadline, "no checkpoint"
                        time.sleep(0.01)  # polling a condition, bounded by the deadline
                if i in kill_at:
                    if kills % 2:  # every other kill lands on a daemon that is learning
                        deadline = time.monotonic() + 60
                        while p.acked()["applied_through"] < i - 3:
                            assert time.monotonic() < deadline, "no progress"
                            p.poll()  # an idle producer resends once it sees the reconnect
                            time.sleep(0.002)  # polling a condition, bounded by the deadline
                    proc.send_signal(signal.SIGKILL)
                    assert proc.wait(timeout=30) == -signal.SIGKILL
                    kills += 1
                    proc = _serve(folder, *flags)
            assert p.flush(timeout=120), "the daemon never caught up"
            resent = p.resent
        with Control(f"ipc://{folder}/ctl", timeout=60, retries=1) as control:
            st = control.status()
            assert st["samples_seen"] == n * rows and st["streams"]["k"]["last_seq"] == n - 1
            _save_and_stop(control, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert kills == 20 and resent > 0
    log = (folder / "log").read_text()
    assert log.count('"event": "resumed"') >= 10 and '"event": "checkpoint_corrupt"' not in log
    _assert_learned_once_in_order(folder, X, y, n, rows)
