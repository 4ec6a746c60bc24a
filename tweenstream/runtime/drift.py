"""Page-Hinkley drift detection on a stream of values (the running loss).

With x_t the observations, mean_t their running mean, the statistic is
m_t = sum_{i<=t} (x_i - mean_i - delta) and M_t = min_{i<=t} m_i. Drift (an increase of the
mean) is signalled when m_t - M_t > threshold, after ``min_samples`` observations; the detector
then restarts. ``delta`` is the magnitude of change tolerated, ``threshold`` trades detection
delay against false alarms (Page 1954; Hinkley 1971).
"""

from __future__ import annotations

import math


class PageHinkley:
    """Detects an increase in the mean of the values fed to ``update``.

    Examples
    --------
    >>> ph = PageHinkley(delta=0.01, threshold=1.0, min_samples=20)
    >>> any(ph.update(0.1) for _ in range(200))
    False
    >>> any(ph.update(0.6) for _ in range(50))
    True
    """

    def __init__(self, delta: float = 0.005, threshold: float = 5.0, min_samples: int = 30):
        if delta < 0 or threshold <= 0 or min_samples < 1:
            raise ValueError("delta must be >= 0, threshold > 0 and min_samples >= 1")
        self.delta, self.threshold, self.min_samples = delta, threshold, min_samples
        self.detections = 0
        self.reset()

    def reset(self) -> None:
        """Start afresh (after a detection, or a refinement)."""
        self.n = 0
        self.mean = 0.0
        self.cumulative = 0.0
        self.minimum = math.inf

    def update(self, value: float) -> bool:
        """Add one observation; True when drift is detected (the detector then resets)."""
        if not math.isfinite(value):
            return False
        self.n += 1
        self.mean += (value - self.mean) / self.n
        self.cumulative += value - self.mean - self.delta
        self.minimum = min(self.minimum, self.cumulative)
        if self.n >= self.min_samples and self.cumulative - self.minimum > self.threshold:
            self.detections += 1
            self.reset()
            return True
        return False


class Plateau:
    """Detects that a metric to maximise (e.g. prequential accuracy) stopped improving.

    Values are averaged over windows of ``window`` samples (each ``update`` brings the mean of
    ``n`` samples). A window that beats the best so far by less than ``min_gain`` is stale;
    ``patience`` stale windows in a row signal a plateau, and the detector then restarts.

    Examples
    --------
    >>> p = Plateau(window=100, min_gain=0.01, patience=2)
    >>> [p.update(0.5, 100) for _ in range(4)]
    [False, False, True, False]
    """

    def __init__(self, window: int = 2_000, min_gain: float = 0.005, patience: int = 3):
        if window < 1 or min_gain < 0 or patience < 1:
            raise ValueError("window must be >= 1, min_gain >= 0 and patience >= 1")
        self.window, self.min_gain, self.patience = window, min_gain, patience
        self.detections = 0
        self.reset()

    def reset(self) -> None:
        """Start afresh."""
        self.best = -math.inf
        self.stale = 0
        self._sum = 0.0
        self._n = 0

    def update(self, value: float, n: int = 1) -> bool:
        """Add the mean ``value`` of ``n`` samples; True when a plateau is detected."""
        if not math.isfinite(value) or n < 1:
            return False
        self._sum += value * n
        self._n += n
        if self._n < self.window:
            return False
        mean, self._sum, self._n = self._sum / self._n, 0.0, 0
        if mean > self.best + self.min_gain:
            self.best, self.stale = mean, 0
            return False
        self.stale += 1
        if self.stale >= self.patience:
            self.detections += 1
            self.reset()
            return True
        return False
