"""The shared parameter-update rule every kind's update kernel uses, and the optimiser steps.

One rule serves both momentum optimisers: d = clip(scale * src, +-lim); v = va*v + vb*d;
w += vc*v. Backprop passes (momentum, 1, lr) - heavy-ball SGD with PyTorch's semantics; tween
passes (m, 1-m, 1) - Loom's EMA momentum.

Backprop with ``optimizer="adam"`` or ``"adagrad"`` never touches the parameters from a kind's
kernel: every kind accumulates its clipped descent direction d (= minus the gradient) into
``pbuf[P_ACC]`` as batch mode does, and ``apply_adaptive`` then steps the whole parameter
vector with the mean direction. So no kind's kernels know about the optimiser. Adam keeps its
first moment (of d, so it has the sign of SGD's velocity) in ``P_VEL`` and its second moment in
``P_SQ``; AdaGrad keeps its sum of squares in ``P_SQ``; the step count is ``ist[N_OPT_STEP]``.
Shapes: ``pbuf`` (NPROW, P) float32, ``table`` (L, NCOL) int64, ``diag`` (NDROW, L) float64.

Speed notes, measured: kernels index views from 0 with ``range`` variables (never ``base + j``),
so Numba drops negative-index checks and LLVM vectorises; a matrix is updated by one call on a
2-D view, not one call per row (views cost reference counting); and the accumulate branch lives
in ``update_outer``/``update_vec``, outside the loops.
"""

import numpy as np

from tweenstream.runtime.layout import (
    C_NP,
    C_P,
    D_NORM2,
    N_BATCH_FILL,
    N_OPT_STEP,
    O_ADAGRAD,
    O_ADAM,
    P_ACC,
    P_PARAM,
    P_SQ,
    P_VEL,
    W_ACT,
)
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


@inline
def adam_vec(w, m, v, acc, inv, keep1, gain1, keep2, gain2, step_size, inv_root2, eps):
    """Adam on w, m, v (n,) with the mean direction d = inv * acc (n,); returns sum w².

    m = keep1 m + gain1 d; v = keep2 v + gain2 d²; w += step_size m / (sqrt(v) inv_root2 + eps),
    with the bias corrections folded into step_size and inv_root2. Mutates w, m, v.
    """
    n2 = np.float32(0.0)
    for j in range(w.shape[0]):
        d = inv * acc[j]
        mj = keep1 * m[j] + gain1 * d
        mj = mj if abs(mj) >= _TINY else _ZERO  # decaying moments would turn subnormal (slow)
        vj = keep2 * v[j] + gain2 * d * d
        vj = vj if vj >= _TINY else _ZERO
        m[j] = mj
        v[j] = vj
        wj = w[j] + step_size * mj / (np.sqrt(vj) * inv_root2 + eps)
        w[j] = wj
        n2 += wj * wj
    return n2


@inline
def adagrad_vec(w, s, acc, inv, lr, eps):
    """AdaGrad on w, s (n,) with the mean direction d = inv * acc (n,); returns sum w².

    s += d²; w += lr d / (sqrt(s) + eps). Mutates w and s.
    """
    n2 = np.float32(0.0)
    for j in range(w.shape[0]):
        d = inv * acc[j]
        sj = s[j] + d * d
        s[j] = sj
        wj = w[j] + lr * d / (np.sqrt(sj) + eps)
        w[j] = wj
        n2 += wj * wj
    return n2


@kernel
def apply_adaptive(table, pbuf, diag, count, optimizer, lr, beta1, beta2, eps, step):
    """One Adam or AdaGrad step (PyTorch's semantics) on the mean of ``count`` accumulated
    descent directions in ``pbuf[P_ACC]``; clears them and refreshes ``diag[D_NORM2]``.

    ``optimizer`` is O_ADAM or O_ADAGRAD, ``step`` the 1-based step count (Adam's bias
    correction), ``lr`` the rate in effect; betas and eps are float64. Mutates pbuf rows
    P_PARAM, P_VEL (Adam), P_SQ and P_ACC, and diag[D_NORM2].
    """
    inv = np.float32(1.0 / count)
    eps32 = np.float32(eps)
    if optimizer == O_ADAM:
        keep1, gain1 = np.float32(beta1), np.float32(1.0 - beta1)
        keep2, gain2 = np.float32(beta2), np.float32(1.0 - beta2)
        # bias corrections in float64, as PyTorch computes them from Python floats
        step_size = np.float32(lr / (1.0 - beta1 ** step))
        inv_root2 = np.float32(1.0 / np.sqrt(1.0 - beta2 ** step))
        for i in range(table.shape[0]):
            p, n = table[i, C_P], table[i, C_NP]
            acc = pbuf[P_ACC, p:p + n]
            diag[D_NORM2, i] = adam_vec(pbuf[P_PARAM, p:p + n], pbuf[P_VEL, p:p + n],
                                        pbuf[P_SQ, p:p + n], acc, inv, keep1, gain1, keep2,
                                        gain2, step_size, inv_root2, eps32)
            acc[:] = np.float32(0.0)
    elif optimizer == O_ADAGRAD:
        rate = np.float32(lr)
        for i in range(table.shape[0]):
            p, n = table[i, C_P], table[i, C_NP]
            acc = pbuf[P_ACC, p:p + n]
            diag[D_NORM2, i] = adagrad_vec(pbuf[P_PARAM, p:p + n], pbuf[P_SQ, p:p + n], acc,
                                           inv, rate, eps32)
            acc[:] = np.float32(0.0)
    else:
        raise ValueError("apply_adaptive: unknown optimiser code (expected O_ADAM or O_ADAGRAD)")


@inline
def reset_optimizer(pbuf, ist):
    """Forget every optimiser state: momentum or first moment, the partial batch, second
    moments and the step count. pbuf (NPROW, P) float32, ist (NIST,) int64; mutates both.

    The one reset for a rollback, a phase switch, new parameters and a new arena.
    """
    pbuf[P_VEL, :] = np.float32(0.0)
    pbuf[P_ACC, :] = np.float32(0.0)
    pbuf[P_SQ, :] = np.float32(0.0)
    ist[N_BATCH_FILL] = 0
    ist[N_OPT_STEP] = 0


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
