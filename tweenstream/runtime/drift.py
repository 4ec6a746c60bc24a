"""Page-Hinkley drift detection on a stream of values (the running loss), and the plateau
detector (``Plateau``, one rule shared with the compiled hybrid trigger).

With x_t the observations, mean_t their running mean, the statistic is
m_t = sum_{i<=t} (x_i - mean_i - delta) and M_t = min_{i<=t} m_i. Drift (an increase of the
mean) is signalled when m_t - M_t > threshold, after ``min_samples`` observations; the detector
then restarts. ``delta`` is the magnitude of change tolerated, ``threshold`` trades detection
delay against false alarms (Page 1954; Hinkley 1971).
"""

from __future__ import annotations

import math

import numpy as np

from tweenstream.runtime.numba_config import kernel


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
        self._f = np.zeros(2)  # window sum, best window mean
        self._i = np.zeros(2, np.int64)  # samples in the window, stale windows in a row
        self.reset()

    @property
    def best(self) -> float:
        """The best window mean so far."""
        return float(self._f[1])

    @property
    def stale(self) -> int:
        """Stale windows in a row."""
        return int(self._i[1])

    def reset(self) -> None:
        """Start afresh."""
        self._f[:] = 0.0, -math.inf
        self._i[:] = 0

    def update(self, value: float, n: int = 1) -> bool:
        """Add the mean ``value`` of ``n`` samples; True when a plateau is detected."""
        if n < 1:
            return False
        found = bool(plateau_update(self._f, self._i, float(value), int(n), self.window,
                                    float(self.min_gain), self.patience))
        self.detections += found
        return found


@kernel
def plateau_update(f, i, value, n, window, min_gain, patience):
    """The plateau rule, shared by ``Plateau`` and the compiled hybrid trigger.

    ``f`` = (window sum, best window mean), ``i`` = (samples in the window, stale windows in a
    row). Adds ``n`` samples of mean ``value`` (a non-finite value is ignored); when the window
    is full its mean is compared with the best; ``patience`` stale windows in a row return
    True and start the detector afresh.

    Examples
    --------
    >>> f, i = np.array([0.0, -np.inf]), np.zeros(2, np.int64)
    >>> [bool(plateau_update(f, i, 0.5, 10, 10, 0.01, 2)) for _ in range(3)]
    [False, False, True]
    """
    if not np.isfinite(value):
        return False
    f[0] += value * n
    i[0] += n
    if i[0] < window:
        return False
    mean = f[0] / i[0]
    f[0] = 0.0
    i[0] = 0
    if mean > f[1] + min_gain:
        f[1] = mean
        i[1] = 0
        return False
    i[1] += 1
    if i[1] >= patience:
        f[1] = -np.inf
        i[1] = 0
        return True
    return False
