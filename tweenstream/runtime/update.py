"""The shared parameter-update rule every kind's update kernel uses.

One rule serves both optimisers: d = clip(scale * src, +-lim); v = va*v + vb*d; w += vc*v.
Backprop passes (momentum, 1, lr) - heavy-ball SGD with PyTorch's semantics; tween passes
(m, 1-m, 1) - Loom's EMA momentum.

Speed notes, measured: kernels index views from 0 with ``range`` variables (never ``base + j``),
so Numba drops negative-index checks and LLVM vectorises; a matrix is updated by one call on a
2-D view, not one call per row (views cost reference counting); and the accumulate branch lives
in ``update_outer``/``update_vec``, outside the loops.
"""

import numpy as np

from tweenstream.runtime.layout import C_NP, C_P, D_NORM2, P_ACC, P_PARAM, P_VEL, W_ACT
from tweenstream.runtime.numba_config import inline, kernel
from tweenstream.runtime.unmanaged import matrix_f32

# Momentum below this is flushed to zero: a converged model's momentum otherwise decays into
# subnormal floats, which made steps 2-3x slower (measured), and such values move no weight.
_TINY = np.float32(1e-30)
_ZERO = np.float32(0.0)


@inline
def apply_outer(W, V, u, x, coef, lim, va, vb, vc):
    """W, V (m, n) += the rule with d[o, j] = clip(coef * u[o] * x[j]); returns sum W²."""
    n2 = np.float32(0.0)
    for o in range(W.shape[0]):
        s = coef * u[o]
        for j in range(W.shape[1]):
            d = min(max(s * x[j], -lim), lim)
            vj = va * V[o, j] + vb * d
            vj = vj if abs(vj) >= _TINY else _ZERO
            V[o, j] = vj
            wj = W[o, j] + vc * vj
            W[o, j] = wj
            n2 += wj * wj
    return n2


@inline
def apply_vec(w, v, x, coef, lim, va, vb, vc):
    """w, v (n,) += the rule with d[j] = clip(coef * x[j]); returns sum w²."""
    n2 = np.float32(0.0)
    for j in range(w.shape[0]):
        d = min(max(coef * x[j], -lim), lim)
        vj = va * v[j] + vb * d
        vj = vj if abs(vj) >= _TINY else _ZERO
        v[j] = vj
        wj = w[j] + vc * vj
        w[j] = wj
        n2 += wj * wj
    return n2


@inline
def accumulate_outer(ACC, u, x, coef, lim):
    """Batch mode: ACC (m, n) += clip(coef * u[o] * x[j]); parameters do not change."""
    for o in range(ACC.shape[0]):
        s = coef * u[o]
        for j in range(ACC.shape[1]):
            ACC[o, j] += min(max(s * x[j], -lim), lim)


@inline
def accumulate_vec(acc, x, coef, lim):
    """Batch mode: acc (n,) += clip(coef * x[j])."""
    for j in range(acc.shape[0]):
        acc[j] += min(max(coef * x[j], -lim), lim)


@kernel
def update_outer(pbuf, lo, m, n, u, x, coef, lim, va, vb, vc, accumulate):
    """Update (or accumulate) the (m, n) matrix at [lo, lo + m*n) by coef * outer(u, x)."""
    hi = lo + m * n
    if accumulate:
        accumulate_outer(matrix_f32(pbuf[P_ACC, lo:hi], m, n), u, x, coef, lim)
        return np.float32(0.0)
    return apply_outer(matrix_f32(pbuf[P_PARAM, lo:hi], m, n),
                       matrix_f32(pbuf[P_VEL, lo:hi], m, n), u, x, coef, lim, va, vb, vc)


@kernel
def update_vec(pbuf, lo, n, x, coef, lim, va, vb, vc, accumulate):
    """Update (or accumulate) the vector at [lo, lo + n) by coef * x."""
    if accumulate:
        accumulate_vec(pbuf[P_ACC, lo:lo + n], x, coef, lim)
        return np.float32(0.0)
    return apply_vec(pbuf[P_PARAM, lo:lo + n], pbuf[P_VEL, lo:lo + n], x, coef, lim, va, vb, vc)


@kernel
def update_stored(pbuf, work, p, g, nw, nb, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """Update the ``nw`` weights then the ``nb`` biases at ``p`` from the gradients a kind's
    backprop stored in its scratch, ``work[W_ACT, g:g + nw + nb]`` (same order); returns the
    new sum of squares."""
    n2 = update_vec(pbuf, p, nw, work[W_ACT, g:g + nw], coef_w, lim, va, vb, vc, accumulate)
    n2 += update_vec(pbuf, p + nw, nb, work[W_ACT, g + nw:g + nw + nb], coef_b, lim, va, vb, vc,
                     accumulate)
    return np.float64(n2)


@kernel
def apply_accumulated(table, pbuf, diag, count, va, vb, vc):
    """Apply the mean of ``count`` accumulated per-sample updates, clear them, refresh norms."""
    inv = np.float32(1.0 / count)
    for i in range(table.shape[0]):
        p, n = table[i, C_P], table[i, C_NP]
        acc = pbuf[P_ACC, p:p + n]
        diag[D_NORM2, i] = apply_vec(pbuf[P_PARAM, p:p + n], pbuf[P_VEL, p:p + n], acc, inv,
                                     np.float32(np.inf), va, vb, vc)
        acc[:] = np.float32(0.0)


@kernel
def layer_norms(table, pbuf, diag):
    """Recompute every layer's parameter sum of squares into ``diag[D_NORM2]``."""
    for i in range(table.shape[0]):
        p, n = table[i, C_P], table[i, C_NP]
        w = pbuf[P_PARAM, p:p + n]
        n2 = 0.0
        for k in range(n):
            n2 += np.float64(w[k]) * w[k]
        diag[D_NORM2, i] = n2
