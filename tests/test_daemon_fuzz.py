"""The daemon survives bench/daemon_fuzz.py: malformed messages on both sockets, every control
request answered exactly once, memory bounded, a clean exit afterwards."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_daemon_survives_malformed_messages(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    daemon_fuzz = importlib.import_module("bench.daemon_fuzz")
    report = daemon_fuzz.fuzz(messages=20_000, seed=11)
    why = {k: report[k] for k in ("unanswered_by_generator", "internal_errors", "stopped_early",
                                  "stderr_tail")}
    assert report["messages"] == 20_000, why
    assert report["crashed"] is False, why
    assert report["unanswered"] == 0, why
    assert report["exit_code"] == 0, why
    rss = report["rss_mb"]
    assert rss["peak"] - rss["baseline"] < 150, rss
