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
    >>> exporter = Exporter("127.0.0.1:0", model="default")
    >>> exporter.port > 0
    True
    >>> exporter.close()
    """

    def __init__(self, address: str, model: str = "default") -> None:
        try:
            from prometheus_client import CollectorRegistry, Histogram, start_http_server
        except ModuleNotFoundError as err:
            raise ModuleNotFoundError("--prometheus needs the prometheus-client package: "
                                      "pip install 'tweenstream[prometheus]'",
                                      name=err.name) from None
        host, port = parse_address(address)
        self.model = model
        self.snapshot: dict[str, Any] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram("tweenstream_predict_latency_seconds",
                                 "Predict requests on the control socket, receive to send",
                                 ["model"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._latency = self.latency.labels(model=model)
        self.registry.register(_Snapshot(self))
        self.server, self.thread = start_http_server(port, addr=host, registry=self.registry)
        self.host, self.port = host, int(self.server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def update(self, snapshot: dict[str, Any]) -> None:
        """Replace the snapshot (one reference swap: a scrape sees the old or the new)."""
        self.snapshot = snapshot

    def observe_predict(self, seconds: float) -> None:
        self._latency.observe(seconds)

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

        snap, model = self.exporter.snapshot, self.exporter.model
        if not snap:
            return
        st, counters = snap["learner"], snap["counters"]

        def counter(name: str, doc: str, value: float) -> Any:
            family = CounterMetricFamily(f"tweenstream_{name}", doc, labels=["model"])
            family.add_metric([model], value)
            return family

        def gauge(name: str, doc: str, value: float) -> Any:
            family = GaugeMetricFamily(f"tweenstream_{name}", doc, labels=["model"])
            family.add_metric([model], value)
            return family

        yield counter("samples", "Samples learned (test-then-train)", counters.get("samples", 0))
        yield counter("messages", "Learn messages applied", counters.get("messages", 0))
        yield counter("predictions", "Rows predicted on request", counters.get("predictions", 0))
        rejected = CounterMetricFamily("tweenstream_rejected_messages",
                                       "Messages refused, by reason code",
                                       labels=["model", "reason"])
        for reason, n in sorted(snap["rejected_messages"].items()):
            rejected.add_metric([model, str(reason)], n)
        yield rejected
        metric = "accuracy" if "prequential_accuracy" in st else "mae"
        yield gauge(f"prequential_{metric}", f"Prequential (test-then-train) {metric} since "
                    "the start", st[f"prequential_{metric}"])
        yield gauge(f"running_{metric}", f"Recent {metric} (EMA over metric_window samples)",
                    st[f"running_{metric}"])
        yield gauge("running_loss", "Recent loss (EMA over metric_window samples)",
                    st["running_loss"])
        yield counter("explosions", "Explosions detected (rolled back or rejected)",
                      st["explosions"])
        yield counter("rollbacks", "Rollbacks to the shadow copy", st["rollbacks"])
        yield gauge("adaptive_rate", "The adaptive rate multiplier (1: no back-off)",
                    st["adaptive_rate"])
        phase = GaugeMetricFamily("tweenstream_phase", "1 for the learning phase in effect",
                                  labels=["model", "phase"])
        for name in PHASES:
            phase.add_metric([model, name], 1.0 if st["phase"] == name else 0.0)
        yield phase
        refine = snap.get("refinement")
        if refine is not None:
            events = CounterMetricFamily("tweenstream_refinement_events",
                                         "Refinement jobs by outcome",
                                         labels=["model", "event"])
            for event in ("started", "accepted", "rejected", "failed", "fallbacks"):
                events.add_metric([model, event], refine.get(event, 0))
            yield events
            yield gauge("refinement_running", "1 while a refinement job is out",
                        1.0 if refine.get("running") else 0.0)
        age = snap.get("checkpoint_age_s")
        if age is not None:
            yield gauge("checkpoint_age_seconds", "Seconds since the last checkpoint", age)
        intake = snap["intake"]
        yield gauge("intake_connections", "Producer connections", intake.get("connections", 0))
        yield counter("backlogged_polls", "Data drains that ended on their time budget with "
                      "messages still queued (the loop falling behind)",
                      intake.get("backlogged_polls", 0))
        yield gauge("streams", "Streams the daemon tracks", snap["streams_total"])
        per_stream = CounterMetricFamily("tweenstream_stream_samples",
                                         "Samples learned per stream (the most recently "
                                         "active streams only)", labels=["model", "stream"])
        for name, s in sorted(snap["streams"].items()):
            per_stream.add_metric([model, name], s.get("samples", 0))
        yield per_stream
