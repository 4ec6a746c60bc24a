"""Request latency over a window of recent requests (numpy only: the edge uses it too)."""

from __future__ import annotations

import numpy as np

WINDOW = 8192


class LatencyWindow:
    """The last ``size`` latencies (seconds, preallocated), summarised as percentiles in µs.

    Examples
    --------
    >>> w = LatencyWindow(4)
    >>> for s in (1e-4, 2e-4, 3e-4, 4e-4, 5e-4):
    ...     w.record(s)
    >>> w.summary()["p50_us"], w.summary()["count"]  # the last four: 200..500 µs
    (350.0, 5)
    """

    def __init__(self, size: int = WINDOW) -> None:
        self._seconds = np.zeros(size, dtype=np.float64)
        self.count = 0

    def record(self, seconds: float) -> None:
        self._seconds[self.count % len(self._seconds)] = seconds
        self.count += 1

    def summary(self) -> dict[str, float]:
        """{p50_us, p99_us, p999_us, count} (only count before the first request)."""
        n = min(self.count, len(self._seconds))
        if not n:
            return {"count": 0}
        p = np.percentile(self._seconds[:n] * 1e6, [50, 99, 99.9])
        return {"p50_us": round(float(p[0]), 1), "p99_us": round(float(p[1]), 1),
                "p999_us": round(float(p[2]), 1), "count": self.count}
