"""The daemon's Prometheus endpoint: a real HTTP scrape, parsed by Prometheus' own parser."""

from __future__ import annotations

import time
import urllib.request

import numpy as np
import pytest
import zmq

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from stream_helpers import serve_process, short_folder  # noqa: E402

from tweenstream.stream.client import Control, Producer  # noqa: E402
from tweenstream.stream.prometheus import parse_address  # noqa: E402
from tweenstream.stream.settings import ServeConfig  # noqa: E402


@pytest.fixture
def folder():
    with short_folder() as path:
        yield path


def _scrape(url: str) -> dict:
    """{(name, labels as a sorted tuple): value} of one scrape."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _until(fetch, done, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"not reached: {value}"
        time.sleep(0.02)  # polling a condition, bounded by the deadline


def test_a_scrape_shows_what_the_daemon_did(folder):
    m = (("model", "default"),)
    with serve_process(folder, "--checkpoint-dir", str(folder / "ck"), "--prometheus",
                       "127.0.0.1:0", "--metrics-interval", "0.05", "--mode", "tween") as proc:
        with Control(f"ipc://{folder}/ctl", timeout=120, retries=1) as control:
            url = control.status()["endpoints"]["prometheus"]
            assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
            rng = np.random.default_rng(0)
            with Producer(f"ipc://{folder}/data", stream="sensor-a") as p:
                for _ in range(3):
                    X = rng.normal(size=(100, 8)).astype(np.float32)
                    p.learn(X, rng.integers(0, 4, 100))
            ctx = zmq.Context.instance()  # one malformed message: a rejection by reason
            raw = ctx.socket(zmq.PUSH)
            raw.connect(f"ipc://{folder}/data")
            raw.send_multipart([b"not msgpack"])
            raw.close(linger=1000)
            for _ in range(5):
                control.predict(np.zeros((1, 8), np.float32))
            got = _until(lambda: _scrape(url),
                         lambda s: s.get(("tweenstream_samples_total", m)) == 300
                         and sum(v for (n, _), v in s.items()
                                 if n == "tweenstream_rejected_messages_total") >= 1
                         and s.get(("tweenstream_predict_latency_seconds_count", m), 0) >= 5)
            assert got[("tweenstream_messages_total", m)] == 3
            assert got[("tweenstream_stream_samples_total", (*m, ("stream", "sensor-a")))] \
                == 300
            assert got[("tweenstream_phase", (*m, ("phase", "tween")))] == 1.0
            assert got[("tweenstream_phase", (*m, ("phase", "backprop")))] == 0.0
            assert 0.0 <= got[("tweenstream_prequential_accuracy", m)] <= 1.0
            assert got[("tweenstream_explosions_total", m)] >= 0
            assert got[("tweenstream_storms_total", m)] == 0
            assert got[("tweenstream_races_total", m)] == 0  # a tween model does not race
            assert got[("tweenstream_checkpoint_age_seconds", m)] >= 0
            assert got[("tweenstream_predict_latency_seconds_bucket",
                        (("le", "+Inf"), *m))] >= 5
            assert control.shutdown()["ok"]
        assert proc.wait(timeout=30) == 0
    with pytest.raises(OSError):  # the endpoint stopped with the daemon
        urllib.request.urlopen(url, timeout=2)


def test_addresses_are_checked_before_anything_starts():
    assert parse_address("127.0.0.1:0") == ("127.0.0.1", 0)
    for bad in ("9100", "host:port", "127.0.0.1:70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            ServeConfig(prometheus=bad)
