"""Anomaly scores from reconstruction errors: an error's rank among the recent ones.

A reconstruction error's size means nothing by itself (it depends on the stream's scale, the
network and how far it has learned) and drifts as the model learns. Its rank among the last
``size`` errors of learned samples does mean the same thing over time: 0.5 is a typical
sample, 0.99 one worse than 99% of the recent ones. ``RankWindow`` keeps those errors in one
preallocated float64 buffer (saved with the model) and ranks without allocating.
"""

from __future__ import annotations

import numpy as np


class RankWindow:
    """The last ``size`` errors, and a new error's rank among them.

    ``buf`` holds ``[count, next slot, error 0, ..., error size-1]`` (one array, so a model
    file stores it as one).

    Examples
    --------
    >>> w = RankWindow(4)
    >>> w.rank(1.0)  # nothing recent yet: neither typical nor rare
    0.5
    >>> for e in (1.0, 2.0, 3.0, 4.0, 5.0):
    ...     w.add(e)
    >>> w.rank(4.5), w.rank(0.0), w.rank(3.0)  # the window holds 2, 3, 4, 5
    (0.75, 0.0, 0.375)
    """

    def __init__(self, size: int = 1000) -> None:
        if type(size) is not int or size < 1:
            raise ValueError(f"size must be an int >= 1, found {size!r}")
        self.size = size
        self.buf = np.zeros(size + 2, dtype=np.float64)
        self._flags = np.zeros(size, dtype=np.bool_)

    def add(self, error: float) -> None:
        """Remember one learned sample's error (the oldest is forgotten when full)."""
        at = int(self.buf[1])
        self.buf[2 + at] = error
        self.buf[1] = (at + 1) % self.size
        self.buf[0] = min(self.buf[0] + 1, self.size)

    def rank(self, error: float) -> float:
        """The fraction of recent errors below ``error`` (ties count half); 0.5 when empty."""
        n = int(self.buf[0])
        if n == 0:
            return 0.5
        recent, flags = self.buf[2:2 + n], self._flags[:n]
        np.less(recent, error, out=flags)
        below = int(np.count_nonzero(flags))
        np.equal(recent, error, out=flags)
        return (below + 0.5 * int(np.count_nonzero(flags))) / n
