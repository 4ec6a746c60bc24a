"""``ServeConfig``: everything ``tweenstream serve`` is told, checked once at construction."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from tweenstream.stream.prometheus import parse_address
from tweenstream.stream.protocol import Limits
from tweenstream.stream.refinement import Refinement
from tweenstream.stream.security import Curve


def cores() -> int:
    """The cores this process may run on (the default number of learner threads)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ServeConfig:
    """The daemon's settings (the ``serve`` flags of the same names).

    Examples
    --------
    >>> ServeConfig(max_streams=0)
    Traceback (most recent call last):
    ...
    ValueError: max_streams must be positive, found 0
    """

    data: str = "tcp://127.0.0.1:5555"
    control: str | None = None  # None: an ipc socket only this user can reach
    insecure_control: bool = False  # allow a tcp control endpoint without CURVE
    metrics: str | None = None
    prometheus: str | None = None  # HOST:PORT of a Prometheus metrics endpoint (off by default)
    subscribe: bool = False  # data socket is SUB instead of PULL
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100_000  # samples
    checkpoint_interval: float = 60.0  # seconds
    keep_checkpoints: int = 3
    checkpoint_budget: int = 1 << 30  # bytes of arrays one checkpoint may hold
    output_dir: str | None = None  # where save/export write; default checkpoint_dir/exports
    push_targets: dict[str, str] = field(default_factory=dict)  # export push: name -> endpoint
    push_timeout: float = 10.0
    rcvhwm: int = 1000  # messages queued per producer connection before it blocks or drops
    queue_bytes: int | None = None  # lower rcvhwm so one connection queues at most this
    drain_seconds: float = 0.05  # learning time before the loop looks at control again
    metrics_interval: float = 1.0
    label_capacity: int = 10_000
    label_max_age: float = 600.0
    max_streams: int = 1024
    stream_ttl: float = 3600.0  # seconds of serving without a message before a stream is freed
    max_seq_jump: int = 1_000_000  # how far past a stream's last seq a message may jump
    strict_order: bool = False  # apply only the next seq of a stream; resend fills the rest
    status_streams: int = 50  # streams listed in status (the most recently active)
    poll_ms: int = 50
    linger_ms: int = 1000
    learner_threads: int = field(default_factory=cores)  # models learned at once
    anomaly_threshold: float | None = None  # autoencoders: publish scores at or above this
    curve: Curve | None = None
    limits: Limits = field(default_factory=Limits)
    refinement: Refinement | None = None  # backprop refinement (needs a learner reservoir)

    def __post_init__(self) -> None:
        if self.prometheus is not None:
            parse_address(self.prometheus)
        if self.queue_bytes is not None and not (type(self.queue_bytes) is int
                                                 and self.queue_bytes > 0):
            raise ValueError(f"queue_bytes must be a positive int, found {self.queue_bytes!r}")
        positive = ("checkpoint_every", "checkpoint_interval", "keep_checkpoints",
                    "checkpoint_budget", "push_timeout", "rcvhwm",
                    "drain_seconds", "metrics_interval", "label_capacity", "label_max_age",
                    "max_streams", "stream_ttl", "max_seq_jump", "status_streams", "poll_ms",
                    "learner_threads")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be positive, found {value!r}")
        if self.anomaly_threshold is not None and not (
                isinstance(self.anomaly_threshold, (int, float))
                and not isinstance(self.anomaly_threshold, bool)
                and 0.0 < self.anomaly_threshold <= 1.0):
            raise ValueError(f"anomaly_threshold must be in (0, 1], found "
                             f"{self.anomaly_threshold!r}")
        if type(self.learner_threads) is not int:
            raise ValueError(f"learner_threads must be an int, found {self.learner_threads!r}")
        if self.linger_ms < 0:
            raise ValueError(f"linger_ms must be >= 0, found {self.linger_ms}")
        for name, endpoint in self.push_targets.items():
            if not isinstance(name, str) or not name or not isinstance(endpoint, str) \
                    or "://" not in endpoint:
                raise ValueError(f"push target {name!r}: expected NAME=ENDPOINT like "
                                 f"edge1=tcp://10.0.0.5:5557, found {endpoint!r}")

    def describe(self) -> dict[str, Any]:
        """The settings as JSON-able values (keys and certificates left out)."""
        skip = {"curve", "refinement", "limits"}
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        out["curve"] = self.curve is not None
        return out
