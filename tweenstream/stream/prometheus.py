"""A Prometheus metrics endpoint for the daemon (``serve --prometheus HOST:PORT``).

Built on ``prometheus-client`` (the optional extra ``[prometheus]``): its HTTP server runs in a
thread of its own and reads a snapshot the daemon's loop refreshes every ``metrics_interval``
(a plain dict replaced whole, so a scrape never sees half an update and never touches the
learner). The predict latency is a histogram the loop observes as requests are answered.

Names follow Prometheus' conventions: ``tweenstream_`` prefix, ``_total`` for counters,
base units (seconds), and the labels ``model`` (and ``stream``, for the most recently active
streams only, so that thousands of streams do not become thousands of series).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tweenstream.modes import PHASES

# prometheus_client is imported where it is used: ServeConfig checks an address with
# parse_address on installs without the extra

LATENCY_BUCKETS = (5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.05, 0.25, 1.0)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (HOST defaults to 127.0.0.1; PORT 0 picks a free port).

    Examples
    --------
    >>> parse_address("127.0.0.1:9100"), parse_address(":0")
    (('127.0.0.1', 9100), ('127.0.0.1', 0))
    >>> parse_address("9100")
    Traceback (most recent call last):
    ...
    ValueError: --prometheus expects HOST:PORT like 127.0.0.1:9100, found '9100'
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--prometheus expects HOST:PORT like 127.0.0.1:9100, found {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class Exporter:
    """The endpoint: ``update`` the snapshot from the loop, ``observe_predict`` per request.

    Examples
    --------
    >>> exporter = Exporter("127.0.0.1:0")
    >>> exporter.port > 0
    True
    >>> exporter.close()
    """

    def __init__(self, address: str) -> None:
        try:
            from prometheus_client import CollectorRegistry, Histogram, start_http_server
        except ModuleNotFoundError as err:
            raise ModuleNotFoundError("--prometheus needs the prometheus-client package: "
                                      "pip install 'tweenstream[prometheus]'",
                                      name=err.name) from None
        host, port = parse_address(address)
        self.snapshot: dict[str, Any] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram("tweenstream_predict_latency_seconds",
                                 "Predict requests on the control socket, receive to send",
                                 ["model"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_Snapshot(self))
        self.server, self.thread = start_http_server(port, addr=host, registry=self.registry)
        self.host, self.port = host, int(self.server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def update(self, snapshot: dict[str, Any]) -> None:
        """Replace the snapshot (one reference swap: a scrape sees the old or the new)."""
        self.snapshot = snapshot

    def add_model(self, model: str) -> None:
        """Start the predict latency series of ``model`` (at zero, before its first request)."""
        self.latency.labels(model=model)

    def remove_model(self, model: str) -> None:
        """Drop the predict latency series of a model no longer served."""
        try:
            self.latency.remove(model)
        except KeyError:
            pass

    def observe_predict(self, seconds: float, model: str = "default") -> None:
        self.latency.labels(model=model).observe(seconds)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _Snapshot:
    """A collector reading the exporter's latest snapshot at scrape time."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snap = self.exporter.snapshot
        if not snap:
            return
        models: dict[str, Any] = snap["models"]

        def family(kind: Any, name: str, doc: str, key: Any, *extra: str) -> Any:
            """One family, a sample per model: ``key(model snapshot)`` is its value (None:
            no sample), or with ``extra`` labels an iterable of (label values, value)."""
            fam = kind(f"tweenstream_{name}", doc, labels=["model", *extra])
            for model, m in models.items():
                value = key(m)
                if value is None:
                    continue
                if extra:
                    for labels, v in value:
                        fam.add_metric([model, *labels], v)
                else:
                    fam.add_metric([model], value)
            return fam

        def counter(name: str, doc: str, key: Any, *extra: str) -> Any:
            return family(CounterMetricFamily, name, doc, key, *extra)

        def gauge(name: str, doc: str, key: Any, *extra: str) -> Any:
            return family(GaugeMetricFamily, name, doc, key, *extra)

        yield counter("samples", "Samples learned (test-then-train)",
                      lambda m: m["counters"].get("samples", 0))
        yield counter("messages", "Learn messages applied",
                      lambda m: m["counters"].get("messages", 0))
        yield counter("predictions", "Rows predicted on request",
                      lambda m: m["counters"].get("predictions", 0))
        yield counter("anomalies", "Learned samples of an autoencoder scoring at or above "
                      "--anomaly-threshold", lambda m: m["counters"].get("anomalies", 0))
        rejected = counter("rejected_messages", "Messages refused, by reason code (model "
                           "empty: refused before reaching a model)",
                           lambda m: [((str(r),), n)
                                      for r, n in sorted(m["rejected_messages"].items())],
                           "reason")
        for reason, n in sorted(snap["unrouted_rejected"].items()):
            rejected.add_metric(["", str(reason)], n)
        yield rejected
        for metric in ("accuracy", "mae"):
            key = f"prequential_{metric}"
            yield gauge(key, f"Prequential (test-then-train) {metric} since the start",
                        lambda m, k=key: m["learner"].get(k))
            key = f"running_{metric}"
            yield gauge(key, f"Recent {metric} (EMA over metric_window samples)",
                        lambda m, k=key: m["learner"].get(k))
        yield gauge("running_loss", "Recent loss (EMA over metric_window samples)",
                    lambda m: m["learner"]["running_loss"])
        yield counter("explosions", "Explosions detected (rolled back or rejected)",
                      lambda m: m["learner"]["explosions"])
        yield counter("rollbacks", "Rollbacks to the shadow copy",
                      lambda m: m["learner"]["rollbacks"])
        yield counter("storms", "Shadow copies rolled back to 3 or more times",
                      lambda m: m["learner"].get("storms", 0))
        yield counter("races", "Hybrid races: a backprop copy learning beside tween",
                      lambda m: m["learner"].get("races", 0))
        yield gauge("adaptive_rate", "The adaptive rate multiplier (1: no back-off)",
                    lambda m: m["learner"]["adaptive_rate"])
        yield gauge("phase", "1 for the learning phase in effect",
                    lambda m: [((p,), 1.0 if m["learner"]["phase"] == p else 0.0)
                               for p in PHASES], "phase")
        yield counter("refinement_events", "Refinement jobs by outcome",
                      lambda m: None if m["refinement"] is None else
                      [((e,), m["refinement"].get(e, 0))
                       for e in ("started", "accepted", "rejected", "failed", "fallbacks")],
                      "event")
        yield gauge("refinement_running", "1 while a refinement job is out",
                    lambda m: None if m["refinement"] is None else
                    1.0 if m["refinement"].get("running") else 0.0)
        yield gauge("checkpoint_age_seconds", "Seconds since the last checkpoint",
                    lambda m: m["checkpoint_age_s"])
        yield gauge("streams", "Streams the model tracks", lambda m: m["streams_total"])
        yield counter("stream_samples", "Samples learned per stream (the most recently "
                      "active streams only)",
                      lambda m: [((name,), s.get("samples", 0))
                                 for name, s in sorted(m["streams"].items())], "stream")
        intake = snap["intake"]
        yield GaugeMetricFamily("tweenstream_intake_connections", "Producer connections",
                                value=intake.get("connections", 0))
        yield CounterMetricFamily("tweenstream_backlogged_polls", "Data drains that ended on "
                                  "their time budget with messages still queued (the loop "
                                  "falling behind)", value=intake.get("backlogged_polls", 0))
