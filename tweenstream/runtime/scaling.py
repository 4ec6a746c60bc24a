"""Online feature standardisation: the input stage of a model, learned as it streams.

Per input feature j: a running count, mean and sum of squared deviations (Welford, float64) over
the samples learned before (test-then-train: a sample is scaled as a prediction made before
learning it would be, then counted), and from them the float32 pair the network's input is
computed with::

    shift_j = float32(mean_j)      inv_j = float32(1 / sqrt(var_j))   (0 while var_j ~ 0)
    z_j = clip((float32(x_j) - shift_j) * inv_j, -c, c)

which the ONNX export writes as Sub, Mul and Clip, so the edge computes the same float32 values.
A missing value (NaN, from a dict without that feature) reads as the mean (z = 0) and is not
counted. Once a feature has ``_WARM`` samples, the value counted into its statistics is clipped
to mean +- c standard deviations, so one absurd sample cannot drag the statistics either.
Statistics freeze after ``freeze_after`` samples if asked, or are given (``fixed``).

Arrays: ``stats`` (3, d) float64 rows count/mean/m2; ``cache`` (3, d) float32 rows shift, inv
and std;
``seen`` (2,) int64: samples learned by the stage, and 1 if the statistics are fixed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.runtime.numba_config import kernel

_WARM = 30
_TRUE, _FALSE = np.bool_(True), np.bool_(False)


@kernel
def _refresh(stats, cache, j):
    """cache[:, j] from stats[:, j]."""
    n, mean, m2 = stats[0, j], stats[1, j], stats[2, j]
    var = m2 / n if n > 0.0 else 0.0
    cache[0, j] = np.float32(mean)
    if var > 1e-24 + 1e-14 * mean * mean:
        cache[1, j] = np.float32(1.0 / np.sqrt(var))
        cache[2, j] = np.float32(np.sqrt(var))
    else:
        cache[1, j] = np.float32(0.0)
        cache[2, j] = np.float32(0.0)


@kernel
def scale_rows(raw, stats, cache, seen, clip, freeze_after, learn, scale, missing_ok, out):
    """Standardise each row of ``raw`` (n, d) float64 into ``out`` (n, d) float32; returns -1,
    or the first row with an unusable value, having changed nothing.

    Unusable: +-inf; NaN unless ``missing_ok`` (NaN = missing, read as z = 0); without
    ``scale`` (the stage is off: ``out`` is ``raw`` in float32) a value beyond float32. With
    ``learn``, each row first updates ``stats``/``cache``/``seen`` (unless fixed or frozen:
    ``freeze_after`` >= 0 samples learned), so row i is scaled with statistics that include
    rows <= i, exactly as one call per row. ``clip`` (float64, inf = off) bounds |z|.
    """
    top = 1.7e308 if scale else 3.4028234663852886e38
    for r in range(raw.shape[0]):
        for j in range(raw.shape[1]):
            v = raw[r, j]
            if v != v:
                if not missing_ok:
                    return r
            elif abs(v) > top:
                return r
    c32 = np.float32(min(clip, 3.0e38))
    for r in range(raw.shape[0]):
        x = raw[r]
        if not scale:
            for j in range(x.shape[0]):
                v = x[j]
                out[r, j] = np.float32(0.0) if v != v else np.float32(v)
            continue
        for j in range(x.shape[0]):
            v = x[j]
            if v != v:
                out[r, j] = np.float32(0.0)
            else:
                z = (np.float32(v) - cache[0, j]) * cache[1, j]
                out[r, j] = min(max(z, -c32), c32)
        if learn:
            _count_row(x, stats, cache, seen, clip, freeze_after)
    return -1


@kernel
def _count_row(x, stats, cache, seen, clip, freeze_after):
    """Count one row's present values into the statistics (unless fixed or frozen)."""
    if seen[1] != 0 or (freeze_after >= 0 and seen[0] >= freeze_after):
        return
    seen[0] += 1
    for j in range(x.shape[0]):
        v = x[j]
        if v != v:
            continue
        n = stats[0, j]
        mean = stats[1, j]
        if n >= _WARM and stats[2, j] > 0.0:  # outliers need a spread to be judged
            lim = clip * np.sqrt(stats[2, j] / n)
            v = min(max(v, mean - lim), mean + lim)
        n += 1.0
        d = v - mean
        mean += d / n
        stats[0, j] = n
        stats[1, j] = mean
        stats[2, j] += d * (v - mean)
        _refresh(stats, cache, j)


@kernel
def scale_targets(Y, stats, cache, seen, clip, freeze_after, learn, out):
    """Regression targets ``Y`` (n, K) float64 for the engine: ``out`` (n, 4K) float32 holds,
    per row, the scaled target z, the target, and the std and mean it was scaled with, so
    that the engine learns z and reports errors in the target's units. Each row is scaled,
    then counted (with ``learn``), as ``scale_rows`` does; rows are finite (checked before)."""
    K = Y.shape[1]
    c32 = np.float32(min(clip, 3.0e38))
    for r in range(Y.shape[0]):
        for k in range(K):
            v = Y[r, k]
            z = (np.float32(v) - cache[0, k]) * cache[1, k]
            out[r, k] = min(max(z, -c32), c32)
            out[r, K + k] = np.float32(v)
            out[r, 2 * K + k] = cache[2, k]
            out[r, 3 * K + k] = cache[0, k]
        if learn:
            _count_row(Y[r], stats, cache, seen, clip, freeze_after)


@kernel
def refresh_all(stats, cache):
    """Recompute every feature's ``cache`` column from ``stats`` (after a load or a set)."""
    for j in range(stats.shape[1]):
        _refresh(stats, cache, j)


class Scaler:
    """The standardisation stage of one model: its statistics and how it applies them.

    Parameters
    ----------
    width : int
        Input features.
    clip : float or None
        Bound on |z| (None: no bound).
    freeze_after : int or None
        Stop updating the statistics after this many samples (None: never).

    Examples
    --------
    >>> sc = Scaler(2, clip=8.0, freeze_after=None)
    >>> out = np.zeros((3, 2), np.float32)
    >>> sc.apply(np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]]), out, learn=True)
    -1
    >>> out[2].tolist(), sc.mean.tolist()
    ([3.0, 0.0], [3.0, 10.0])
    """

    def __init__(self, width: int, clip: float | None, freeze_after: int | None) -> None:
        self.stats = np.zeros((3, width), dtype=np.float64)
        self.cache = np.zeros((3, width), dtype=np.float32)
        self.seen = np.zeros(2, dtype=np.int64)
        self.configure(clip, freeze_after)

    def configure(self, clip: float | None, freeze_after: int | None) -> None:
        """Change the clip and the freeze point (the statistics are kept)."""
        self._clip = np.float64(np.inf if clip is None else clip)
        self._freeze = np.int64(-1 if freeze_after is None else freeze_after)

    def apply(self, raw: np.ndarray, out: np.ndarray, learn: bool, missing_ok: bool = False,
              scale: bool = True) -> int:
        """Scale ``raw`` (n, d) float64 into ``out`` (n, d) float32, learning from it first
        (row by row) if ``learn``; -1, or the first unusable row (then nothing changed).
        Without ``scale`` the rows are only cast (the stage is off)."""
        return int(scale_rows(raw, self.stats, self.cache, self.seen, self._clip, self._freeze,
                              _TRUE if learn else _FALSE, _TRUE if scale else _FALSE,
                              _TRUE if missing_ok else _FALSE, out))

    def targets(self, Y: np.ndarray, out: np.ndarray, learn: bool) -> None:
        """Regression targets (n, K) float64 into the engine's (n, 4K) float32 rows (see
        ``scale_targets``), learning the statistics from them if ``learn``."""
        scale_targets(Y, self.stats, self.cache, self.seen, self._clip, self._freeze,
                      _TRUE if learn else _FALSE, out)

    def unscale(self, out: np.ndarray) -> np.ndarray:
        """Network outputs (n, K) float32 in the targets' units, in place: out * std + mean
        (float32, as the ONNX export's Mul and Add)."""
        out *= self.cache[2]
        out += self.cache[0]
        return out

    @property
    def mean(self) -> np.ndarray:
        """The running mean of every feature (float64 copy)."""
        return self.stats[1].copy()

    @property
    def std(self) -> np.ndarray:
        """The running standard deviation of every feature (float64 copy; 0 before 2 values)."""
        n = np.maximum(self.stats[0], 1.0)
        return np.sqrt(self.stats[2] / n)

    @property
    def fixed(self) -> bool:
        """True when the statistics were given (``set``) and are not learned."""
        return bool(self.seen[1])

    def set(self, mean: Any, std: Any) -> None:
        """Use given statistics from now on, and stop learning them.

        ``ValueError`` (nothing changes) unless both are finite vectors of the input width and
        every std is > 0.
        """
        d = self.stats.shape[1]
        m = np.asarray(mean, dtype=np.float64)
        s = np.asarray(std, dtype=np.float64)
        if m.shape != (d,) or s.shape != (d,):
            raise ValueError(f"mean and std must be vectors of {d} values, found shapes "
                             f"{m.shape} and {s.shape}")
        if not (np.isfinite(m).all() and np.isfinite(s).all() and (s > 0).all()
                and np.isfinite(1.0 / s).all()):
            raise ValueError("mean must be finite and std finite and > 0 for every feature")
        self.stats[0] = 1.0
        self.stats[1] = m
        self.stats[2] = s * s
        self.seen[1] = 1
        refresh_all(self.stats, self.cache)

    def restore(self, stats: np.ndarray, seen: np.ndarray) -> None:
        """Load saved statistics (the float32 pair is recomputed from them)."""
        self.stats[...] = stats
        self.seen[...] = seen
        refresh_all(self.stats, self.cache)
