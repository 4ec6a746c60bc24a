"""``tweenstream top``: the live view of a running daemon, under a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("rich")

from stream_helpers import serve_process, short_folder

from tweenstream.stream.client import Control, Producer
from tweenstream.stream.top import Model, sparkline

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def folder():
    with short_folder() as path:
        yield path


def test_sparklines_and_rates():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([float("nan"), 1.0]) == "▁"
    model = Model()
    model.update({"samples_seen": 100, "running_accuracy": 0.5, "running_loss": 1.0}, 10.0)
    model.update({"samples_seen": 400, "running_accuracy": 0.7, "running_loss": 0.8}, 12.0)
    assert model.rate == 150.0 and list(model.metric) == [0.5, 0.7]


def _run_in_pty(cmd: list[str], timeout: float = 120.0) -> tuple[int, str]:
    """Run ``cmd`` with a pseudo-terminal as its stdout; (exit code, what it drew)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                            env={**os.environ, "COLUMNS": "160", "LINES": "40",
                                 "TERM": "xterm-256color"})
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


def test_top_draws_a_running_daemon_in_a_terminal(folder):
    with serve_process(folder, "--checkpoint-dir", str(folder / "ck"), "--mode",
                       "tween") as serve:
        with Control(f"ipc://{folder}/ctl", timeout=120, retries=1) as control:
            control.status()
            rng = np.random.default_rng(0)
            with Producer(f"ipc://{folder}/data", stream="s") as p:
                p.learn(rng.normal(size=(500, 8)).astype(np.float32), rng.integers(0, 4, 500))
            deadline = time.monotonic() + 60
            while control.status()["samples_seen"] < 500:
                assert time.monotonic() < deadline
                time.sleep(0.01)  # polling a condition, bounded by the deadline
            code, screen = _run_in_pty([sys.executable, "-m", "tweenstream", "top",
                                        "--control", f"ipc://{folder}/ctl", "--interval",
                                        "0.05", "--iterations", "3"])
            assert code == 0, screen
            for text in ("tweenstream top", "samples/s", "default", "tween", "500",
                         "accuracy", "checkpoint age"):
                assert text in screen, (text, screen)
            assert any(ch in screen for ch in "▁▂▃▄▅▆▇█")
            assert control.shutdown()["ok"]
        assert serve.wait(timeout=30) == 0


def test_top_says_when_the_daemon_does_not_answer(folder):
    code, screen = _run_in_pty([sys.executable, "-m", "tweenstream", "top", "--control",
                                f"ipc://{folder}/nobody", "--timeout", "0.3",
                                "--iterations", "2"])
    assert code == 1 and "no reply" in screen, screen
