"""Per-stream bookkeeping: sequence numbers and prequential (test-then-train) metrics.

``SeqTracker`` classifies each incoming ``seq`` of a stream as the next one, after a gap, a
late (reordered) arrival, a duplicate, a jump too far ahead, or (in strict order) a message
that must wait for the ones before it. It keeps the highest applied number and a fixed
``WINDOW``-bit map of which of the numbers below it were applied, so a duplicate is never
learned twice and the state of a stream has a fixed size. ``StreamStats`` keeps the running
metrics of one stream; ``streams_to_arrays`` / ``streams_from_arrays`` store a whole table of
streams as a few fixed-width arrays, so a checkpoint grows by a bounded amount per stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

WINDOW = 4096
_MASK = (1 << WINDOW) - 1
_INTS = ("last", "gaps", "late", "duplicates", "missing", "ahead", "jumps", "samples")
_FLOATS = ("metric_sum", "loss_sum", "recent_metric", "recent_loss", "idle_s")


@dataclass
class SeqTracker:
    """Sequence bookkeeping of one stream.

    Examples
    --------
    >>> t = SeqTracker()
    >>> [t.admit(s) for s in (0, 1, 3, 2, 3)]
    ['next', 'next', 'gap', 'late', 'duplicate']
    >>> t.gaps, t.late, t.duplicates, t.missing, t.applied_through()
    (1, 1, 1, 0, 3)
    >>> t.admit(10**9, max_jump=1000), t.jumps, t.last
    ('jump', 1, 3)
    >>> t.admit(6, strict=True), t.admit(4, strict=True), t.ahead
    ('ahead', 'next', 1)
    """

    last: int = -1
    bits: int = 0  # bit i set: seq (last - i) was applied
    gaps: int = 0
    late: int = 0
    duplicates: int = 0
    missing: int = 0  # numbers skipped by a gap and not (yet) arrived late
    ahead: int = 0  # strict order: numbers refused until the ones before them arrive
    jumps: int = 0  # numbers refused for jumping further ahead than allowed

    def admit(self, seq: int, *, strict: bool = False, max_jump: int | None = None) -> str:
        """Classify ``seq`` and record it if it is to be applied; returns the class.

        ``next``, ``gap`` and ``late`` are applied; ``duplicate``, ``ahead`` (strict order:
        not the next number) and ``jump`` (more than ``max_jump`` past the last, or past -1
        for a new stream) are not. In strict order nothing behind the last is applied.
        """
        if seq > self.last:
            shift = seq - self.last
            if max_jump is not None and shift > max_jump:  # a new stream's first seq too
                self.jumps += 1
                return "jump"
            if strict and self.last >= 0 and shift > 1:
                self.ahead += 1
                return "ahead"
            verdict = "next" if shift == 1 else "gap"
            if shift > 1:
                self.gaps += 1
                self.missing += shift - 1
            self.bits = 1 if shift >= WINDOW else ((self.bits << shift) | 1) & _MASK
            self.last = seq
            return verdict
        i = self.last - seq
        if strict or i >= WINDOW or (self.bits >> i) & 1:  # strict: never behind the last
            self.duplicates += 1
            return "duplicate"
        self.bits |= 1 << i
        self.late += 1
        self.missing -= 1
        return "late"

    def _valid(self) -> int:
        return (1 << min(WINDOW, self.last + 1)) - 1

    def holes(self) -> bool:
        """Are numbers within the window below ``last`` still missing?"""
        return self.last >= 0 and (~self.bits & self._valid()) != 0

    def applied_through(self) -> int:
        """The highest number up to which every number was applied (-1 if none).

        Numbers more than ``WINDOW`` below ``last`` count as applied: they are refused as
        duplicates.
        """
        if self.last < 0:
            return -1
        holes = ~self.bits & self._valid()
        return self.last if holes == 0 else self.last - holes.bit_length()

    def window_bytes(self) -> bytes:
        return self.bits.to_bytes(WINDOW // 8, "little")

    def to_dict(self) -> dict[str, Any]:
        return {"last": self.last, "gaps": self.gaps, "late": self.late,
                "duplicates": self.duplicates, "missing": self.missing, "ahead": self.ahead,
                "jumps": self.jumps}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeqTracker:
        """From ``to_dict`` or the version-1 checkpoint form (which listed applied numbers)."""
        t = cls(int(data["last"]), 0, int(data["gaps"]), int(data["late"]),
                int(data["duplicates"]), int(data["missing"]), int(data.get("ahead", 0)),
                int(data.get("jumps", 0)))
        if "applied" in data:
            for s in data["applied"]:
                if 0 <= t.last - int(s) < WINDOW:
                    t.bits |= 1 << (t.last - int(s))
        else:
            t.bits = t._valid()
        return t


@dataclass
class StreamStats:
    """Prequential metrics of one stream: every sample is scored before it is learned."""

    seq: SeqTracker = field(default_factory=SeqTracker)
    samples: int = 0
    metric_sum: float = 0.0  # correct predictions, or absolute error for regression
    loss_sum: float = 0.0
    recent_metric: float = 0.0  # EMA over ~1000 samples
    recent_loss: float = 0.0
    rate: float = 0.0  # samples per second, EMA
    active_at: float = 0.0  # the daemon's clock (seconds it has served) at the last message
    durable: int = -1  # applied_through() as of the last checkpoint
    _last_time: float = field(default=0.0, repr=False)

    def record(self, n: int, metric_sum: float, loss_sum: float) -> None:
        """Account for ``n`` samples scored in one message."""
        now = time.monotonic()
        if self._last_time:
            dt = max(now - self._last_time, 1e-6)
            self.rate += 0.2 * (n / dt - self.rate)
        self._last_time = now
        weight = min(1.0, n / 1000.0)
        if self.samples == 0:
            self.recent_metric, self.recent_loss = metric_sum / n, loss_sum / n
        else:
            self.recent_metric += weight * (metric_sum / n - self.recent_metric)
            self.recent_loss += weight * (loss_sum / n - self.recent_loss)
        self.samples += n
        self.metric_sum += metric_sum
        self.loss_sum += loss_sum

    def summary(self, metric: str) -> dict[str, Any]:
        """A JSON-able view for status and metrics messages."""
        done = max(self.samples, 1)
        return {"samples": self.samples, f"prequential_{metric}": self.metric_sum / done,
                f"recent_{metric}": self.recent_metric, "recent_loss": self.recent_loss,
                "loss": self.loss_sum / done, "samples_per_s": round(self.rate, 1),
                "last_seq": self.seq.last, "applied_through": self.seq.applied_through(),
                "durable_through": self.durable, "gaps": self.seq.gaps,
                "missing": self.seq.missing, "late": self.seq.late,
                "duplicates": self.seq.duplicates, "ahead": self.seq.ahead,
                "jumps": self.seq.jumps}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamStats:
        """From a version-1 checkpoint's JSON form."""
        return cls(SeqTracker.from_dict(data["seq"]), int(data["samples"]),
                   float(data["metric_sum"]), float(data["loss_sum"]),
                   float(data["recent_metric"]), float(data["recent_loss"]))


def streams_to_arrays(streams: dict[str, StreamStats], clock: float) -> dict[str, np.ndarray]:
    """The stream table as fixed-width arrays (for a checkpoint); ``clock`` is the daemon's.

    Examples
    --------
    >>> s = StreamStats()
    >>> _ = s.seq.admit(0), s.seq.admit(2)
    >>> arrays = streams_to_arrays({"a": s}, clock=5.0)
    >>> back = streams_from_arrays(arrays, clock=5.0)["a"]
    >>> back.seq.last, back.seq.applied_through(), back.seq.admit(1)
    (2, 0, 'late')
    """
    names = list(streams)
    ints = np.array([[getattr(s.seq, k) if k != "samples" else s.samples for k in _INTS]
                     for s in streams.values()], dtype=np.int64).reshape(len(names), len(_INTS))
    floats = np.array([[s.metric_sum, s.loss_sum, s.recent_metric, s.recent_loss,
                        max(0.0, clock - s.active_at)] for s in streams.values()],
                      dtype=np.float64).reshape(len(names), len(_FLOATS))
    holes = [i for i, s in enumerate(streams.values()) if s.seq.holes()]
    stats = list(streams.values())
    bits = np.frombuffer(b"".join(stats[i].seq.window_bytes() for i in holes),
                         dtype=np.uint8).reshape(len(holes), WINDOW // 8)
    return {"stream_names": np.array(names, dtype=str).reshape(len(names)),
            "stream_ints": ints, "stream_floats": floats,
            "stream_hole_rows": np.array(holes, dtype=np.int64), "stream_bits": bits.copy()}


def streams_from_arrays(arrays: dict[str, np.ndarray], clock: float) -> dict[str, StreamStats]:
    """The inverse of ``streams_to_arrays``; raises ``ValueError`` on inconsistent arrays."""
    try:
        names, ints, floats = (arrays["stream_names"], arrays["stream_ints"],
                               arrays["stream_floats"])
        rows, bits = arrays["stream_hole_rows"], arrays["stream_bits"]
    except KeyError as err:
        raise ValueError(f"stream table lacks {err}") from None
    n = len(names)
    if (names.ndim != 1 or ints.shape != (n, len(_INTS)) or floats.shape != (n, len(_FLOATS))
            or rows.ndim != 1 or bits.shape != (len(rows), WINDOW // 8)
            or bits.dtype != np.uint8 or ints.dtype != np.int64):
        raise ValueError("stream table arrays do not fit together")
    if names.dtype.kind != "U" or len(set(names.tolist())) != n or not all(names.tolist()):
        raise ValueError("stream names must be distinct, non-empty strings")
    if n and (ints[:, 0].min() < -1 or not np.isfinite(floats).all()):
        raise ValueError("stream counters out of range")
    if len(rows) and (rows.min() < 0 or rows.max() >= n or len(set(rows.tolist())) != len(rows)):
        raise ValueError("stream hole rows out of range")
    out: dict[str, StreamStats] = {}
    for i, name in enumerate(names.tolist()):
        v = dict(zip(_INTS, (int(x) for x in ints[i]), strict=True))
        t = SeqTracker(v["last"], 0, v["gaps"], v["late"], v["duplicates"], v["missing"],
                       v["ahead"], v["jumps"])
        t.bits = t._valid()
        f = floats[i]
        stats = StreamStats(t, v["samples"], float(f[0]), float(f[1]), float(f[2]),
                            float(f[3]), active_at=clock - float(f[4]))
        out[str(name)] = stats
    for row, window in zip(rows.tolist(), bits, strict=True):
        t = out[str(names[row])].seq
        t.bits = int.from_bytes(window.tobytes(), "little") & t._valid()
    for stats in out.values():
        stats.durable = stats.seq.applied_through()
    return out
