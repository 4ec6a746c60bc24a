"""Oracle of the input standardisation stage (runtime/scaling.py), written plainly.

Per feature: Welford mean/variance in float64 over present (non-NaN) values; after 30 values
(and a non-zero spread) the counted value is clipped to mean +- clip * std; z is computed in
float32 from float32(mean) and float32(1/std), and clipped to +-clip, with the statistics of
the rows before (each row is scaled, then counted). Missing reads as 0.
"""

from __future__ import annotations

import math

import numpy as np


def ref_scale(X: np.ndarray, clip: float, learn: bool = True, freeze_after: int | None = None,
              state: dict | None = None) -> tuple[np.ndarray, dict]:
    """Scale the rows of X (n, d) float64 one by one; returns (Z float32, state)."""
    n, d = X.shape
    st = state or {"count": [0.0] * d, "mean": [0.0] * d, "m2": [0.0] * d, "seen": 0}
    Z = np.zeros((n, d), dtype=np.float32)
    for r in range(n):
        for j in range(d):
            v = float(X[r, j])
            if math.isnan(v):
                continue
            c, m, m2 = st["count"][j], st["mean"][j], st["m2"][j]
            var = m2 / c if c > 0 else 0.0
            inv = np.float32(1.0 / math.sqrt(var)) if var > 1e-24 + 1e-14 * m * m \
                else np.float32(0.0)
            z = (np.float32(v) - np.float32(m)) * inv
            Z[r, j] = np.clip(z, np.float32(-clip), np.float32(clip))
        if learn and (freeze_after is None or st["seen"] < freeze_after):
            st["seen"] += 1
            for j in range(d):
                v = float(X[r, j])
                if math.isnan(v):
                    continue
                c, m, m2 = st["count"][j], st["mean"][j], st["m2"][j]
                if c >= 30 and m2 > 0:
                    s = math.sqrt(m2 / c)
                    v = min(max(v, m - clip * s), m + clip * s)
                c += 1
                delta = v - m
                m += delta / c
                m2 += delta * (v - m)
                st["count"][j], st["mean"][j], st["m2"][j] = c, m, m2
    return Z, st
