"""The shared parameter-update rule every kind's update kernel uses.

One rule serves both optimisers: d = clip(scale * src, +-lim); v = va*v + vb*d; w += vc*v.
Backprop passes (momentum, 1, lr) - heavy-ball SGD with PyTorch's semantics; tween passes
(m, 1-m, 1) - Loom's EMA momentum. Vectors: P, V, ACC are rows of ``pbuf`` (P,).
"""

import numpy as np

from tweenstream.runtime.layout import C_NP, C_P, D_NORM2, P_ACC, P_PARAM, P_VEL
from tweenstream.runtime.numba_config import kernel


@kernel
def apply_row(P, V, ACC, base, n, scale, src, src_off, lim, va, vb, vc, accumulate):
    """Update P[base:base+n] from d = clip(scale * src[src_off:src_off+n], +-lim).

    With ``accumulate`` d is added to ACC instead (batch mode). Returns the new sum of squares
    of the updated parameters (0 when accumulating).
    """
    n2 = np.float32(0.0)
    if accumulate:
        for j in range(n):
            d = min(max(scale * src[src_off + j], -lim), lim)
            ACC[base + j] += d
        return n2
    for j in range(n):
        d = min(max(scale * src[src_off + j], -lim), lim)
        v = va * V[base + j] + vb * d
        V[base + j] = v
        w = P[base + j] + vc * v
        P[base + j] = w
        n2 += w * w
    return n2


@kernel
def apply_accumulated(table, pbuf, diag, count, va, vb, vc):
    """Apply the mean of ``count`` accumulated per-sample updates, clear them, refresh norms."""
    P = pbuf[P_PARAM]
    V = pbuf[P_VEL]
    ACC = pbuf[P_ACC]
    inv = np.float32(1.0 / count)
    for i in range(table.shape[0]):
        p, n = table[i, C_P], table[i, C_NP]
        n2 = np.float32(0.0)
        for k in range(p, p + n):
            v = va * V[k] + vb * (ACC[k] * inv)
            V[k] = v
            w = P[k] + vc * v
            P[k] = w
            n2 += w * w
            ACC[k] = np.float32(0.0)
        diag[D_NORM2, i] = n2


@kernel
def layer_norms(table, pbuf, diag):
    """Recompute every layer's parameter sum of squares into ``diag[D_NORM2]``."""
    P = pbuf[P_PARAM]
    for i in range(table.shape[0]):
        p, n = table[i, C_P], table[i, C_NP]
        n2 = np.float64(0.0)
        for k in range(p, p + n):
            n2 += np.float64(P[k]) * P[k]
        diag[D_NORM2, i] = n2
