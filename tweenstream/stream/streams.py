"""Per-stream bookkeeping: sequence numbers and prequential (test-then-train) metrics.

``SeqTracker`` classifies each incoming ``seq`` of a stream as the next one, after a gap, a
late (reordered) arrival, or a duplicate, remembering the last ``window`` applied numbers so a
duplicate is never learned twice. ``StreamStats`` keeps the running metrics of one stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

WINDOW = 4096


@dataclass
class SeqTracker:
    """Sequence bookkeeping of one stream.

    Examples
    --------
    >>> t = SeqTracker()
    >>> [t.admit(s) for s in (0, 1, 3, 2, 3)]
    ['next', 'next', 'gap', 'late', 'duplicate']
    >>> t.gaps, t.late, t.duplicates, t.missing
    (1, 1, 1, 0)
    """

    last: int = -1
    applied: set[int] = field(default_factory=set)
    gaps: int = 0
    late: int = 0
    duplicates: int = 0
    missing: int = 0  # numbers skipped by a gap and not (yet) arrived late

    def admit(self, seq: int) -> str:
        """Classify ``seq`` and record it unless it is a duplicate; returns the class."""
        if seq in self.applied or seq <= self.last - WINDOW:
            self.duplicates += 1
            return "duplicate"
        if seq == self.last + 1:
            verdict = "next"
        elif seq > self.last + 1:
            self.gaps += 1
            self.missing += seq - self.last - 1
            verdict = "gap"
        else:
            self.late += 1
            self.missing -= 1
            verdict = "late"
        self.applied.add(seq)
        self.last = max(self.last, seq)
        if len(self.applied) > 2 * WINDOW:  # prune in bulk: amortised O(1) per message
            floor = self.last - WINDOW
            self.applied = {s for s in self.applied if s > floor}
        return verdict

    def to_dict(self) -> dict[str, Any]:
        return {"last": self.last, "applied": sorted(self.applied), "gaps": self.gaps,
                "late": self.late, "duplicates": self.duplicates, "missing": self.missing}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeqTracker:
        return cls(int(data["last"]), set(data["applied"]), int(data["gaps"]), int(data["late"]),
                   int(data["duplicates"]), int(data["missing"]))


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
                "last_seq": self.seq.last, "gaps": self.seq.gaps, "missing": self.seq.missing,
                "late": self.seq.late, "duplicates": self.seq.duplicates}

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq.to_dict(), "samples": self.samples, "metric_sum": self.metric_sum,
                "loss_sum": self.loss_sum, "recent_metric": self.recent_metric,
                "recent_loss": self.recent_loss}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamStats:
        return cls(SeqTracker.from_dict(data["seq"]), int(data["samples"]),
                   float(data["metric_sum"]), float(data["loss_sum"]),
                   float(data["recent_metric"]), float(data["recent_loss"]))
