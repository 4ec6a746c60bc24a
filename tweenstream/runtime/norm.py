"""Compiled LayerNorm / RMSNorm kernels (one set; ``shift`` = 1 for LayerNorm).

Shapes: x (R*d,) at the input slot, a (R*d,) at the output slot, gamma (d,) then beta (d,) at
``C_P``. Scratch: x-hat (R*d), 1/std per row (R), then the gamma and beta gradients (2d) in the
``W_DZ`` row. Row dims: d, R, shift.
"""

import numpy as np

from tweenstream.models.norm import LAYER_NORM
from tweenstream.runtime.kernels import Kernels
from tweenstream.runtime.layout import (
    C_IN,
    C_OUT,
    C_P,
    C_S,
    P_PARAM,
    W_ACT,
    W_DELTA,
    W_DZ,
    W_PRE,
    dim,
)
from tweenstream.runtime.numba_config import kernel
from tweenstream.runtime.update import update_vec

# row integers, by the names the kind declares
_FEATURES = dim(LAYER_NORM, "features")
_ROWS = dim(LAYER_NORM, "rows")
_SHIFT = dim(LAYER_NORM, "shift")

_EPS_LN = 1e-5
_EPS_RMS = 1e-6


@kernel
def norm_forward(row, pbuf, work):
    """a = gamma * x-hat (+ beta); caches x-hat and 1/std in scratch. Writes W_ACT, W_PRE."""
    d, R, shift = row[_FEATURES], row[_ROWS], row[_SHIFT]
    xi, oo, p, s0 = row[C_IN], row[C_OUT], row[C_P], row[C_S]
    n = d * R
    x = work[W_ACT, xi:xi + n]
    a = work[W_ACT, oo:oo + n]
    z = work[W_PRE, oo:oo + n]
    xh = work[W_ACT, s0:s0 + n]
    rstd = work[W_ACT, s0 + n:s0 + n + R]
    gamma = pbuf[P_PARAM, p:p + d]
    beta = pbuf[P_PARAM, p + d:p + 2 * d]
    for r in range(R):
        seg = x[r * d:(r + 1) * d]
        mean = 0.0
        if shift:
            for j in range(d):
                mean += seg[j]
            mean /= d
        var = 0.0
        for j in range(d):
            c = seg[j] - mean
            var += c * c
        var /= d
        inv = 1.0 / np.sqrt(var + (_EPS_LN if shift else _EPS_RMS))
        rstd[r] = inv
        for j in range(d):
            h = np.float32((seg[j] - mean) * inv)
            xh[r * d + j] = h
            v = gamma[j] * h + (beta[j] if shift else np.float32(0.0))
            a[r * d + j] = v
            z[r * d + j] = v


@kernel
def norm_signal(row, pbuf, work, need_input):
    """dz = g (no activation); g_in = (1/std) (g*gamma - mean(g*gamma) - x-hat mean(g*gamma*x-hat)),
    without the first mean for RMSNorm."""
    d, R, shift = row[_FEATURES], row[_ROWS], row[_SHIFT]
    xi, oo, p, s0 = row[C_IN], row[C_OUT], row[C_P], row[C_S]
    n = d * R
    g = work[W_DELTA, oo:oo + n]
    work[W_DZ, oo:oo + n] = g
    if not need_input:
        return
    gin = work[W_DELTA, xi:xi + n]
    xh = work[W_ACT, s0:s0 + n]
    rstd = work[W_ACT, s0 + n:s0 + n + R]
    gamma = pbuf[P_PARAM, p:p + d]
    for r in range(R):
        m1 = 0.0
        m2 = 0.0
        for j in range(d):
            dh = np.float64(g[r * d + j]) * gamma[j]
            m1 += dh
            m2 += dh * xh[r * d + j]
        m1 = m1 / d if shift else 0.0
        m2 /= d
        for j in range(d):
            dh = np.float64(g[r * d + j]) * gamma[j]
            gin[r * d + j] = np.float32(rstd[r] * (dh - m1 - xh[r * d + j] * m2))


@kernel
def norm_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """d gamma = sum over rows of e * x-hat, d beta = sum of e, e = W_DZ at the output slot."""
    d, R, shift = row[_FEATURES], row[_ROWS], row[_SHIFT]
    oo, p, s0 = row[C_OUT], row[C_P], row[C_S]
    n = d * R
    e = work[W_DZ, oo:oo + n]
    xh = work[W_ACT, s0:s0 + n]
    gg = work[W_DZ, s0 + n + R:s0 + n + R + d]
    gb = work[W_DZ, s0 + n + R + d:s0 + n + R + 2 * d]
    gg[:] = np.float32(0.0)
    gb[:] = np.float32(0.0)
    for r in range(R):
        for j in range(d):
            gg[j] += e[r * d + j] * xh[r * d + j]
            gb[j] += e[r * d + j]
    n2 = update_vec(pbuf, p, d, gg, coef_w, lim, va, vb, vc, accumulate)
    if shift:
        n2 += update_vec(pbuf, p + d, d, gb, coef_b, lim, va, vb, vc, accumulate)
    return np.float64(n2)


LAYER_NORM_KERNELS = RMS_NORM_KERNELS = Kernels(norm_forward, norm_signal, norm_update)
