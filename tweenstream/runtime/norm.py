"""Compiled LayerNorm / RMSNorm kernels (one set; ``shift`` = 1 for LayerNorm).

Shapes: x (R*d,) at the input slot, a (R*d,) at the output slot, gamma (d,) and beta (d,;
LayerNorm only) at the row's "gamma" and "beta" offsets. Scratch segments: "xhat" (R*d) and
"rstd" (R, 1/std per row) in the ``W_ACT`` row, "grad_gamma" and "grad_beta" (d each) in the
``W_DZ`` row. Row dims: features d, rows R, shift.
"""

import numpy as np

from tweenstream.models.norm import LAYER_NORM
from tweenstream.runtime.kernels import Kernels
from tweenstream.runtime.layout import (
    C_IN,
    C_OUT,
    P_PARAM,
    W_ACT,
    W_DELTA,
    W_DZ,
    W_PRE,
    dim,
)
from tweenstream.runtime.numba_config import kernel
from tweenstream.runtime.unmanaged import copy_into
from tweenstream.runtime.update import update_vec

# row integers, by the names the kind declares
_FEATURES = dim(LAYER_NORM, "features")
_ROWS = dim(LAYER_NORM, "rows")
_SHIFT = dim(LAYER_NORM, "shift")
_XHAT, _RSTD = dim(LAYER_NORM, "xhat"), dim(LAYER_NORM, "rstd")
_GRAD_GAMMA, _GRAD_BETA = dim(LAYER_NORM, "grad_gamma"), dim(LAYER_NORM, "grad_beta")
_GAMMA = dim(LAYER_NORM, "gamma")  # the same column in RMSNorm rows (the layouts share it)
_BETA = dim(LAYER_NORM, "beta")  # LayerNorm only; 0 in RMSNorm rows, never read there

_EPS_LN = 1e-5
_EPS_RMS = 1e-6


@kernel
def norm_forward(row, pbuf, work):
    """a = gamma * x-hat (+ beta); caches x-hat and 1/std in scratch. Writes W_ACT, W_PRE."""
    d, R, shift = row[_FEATURES], row[_ROWS], row[_SHIFT]
    xi, oo, p = row[C_IN], row[C_OUT], row[_GAMMA]
    n = d * R
    x = work[W_ACT, xi:xi + n]
    a = work[W_ACT, oo:oo + n]
    z = work[W_PRE, oo:oo + n]
    xh = work[W_ACT, row[_XHAT]:row[_XHAT] + n]
    rstd = work[W_ACT, row[_RSTD]:row[_RSTD] + R]
    gamma = pbuf[P_PARAM, p:p + d]
    beta = pbuf[P_PARAM, row[_BETA]:row[_BETA] + d]  # read only when shift (LayerNorm)
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
    xi, oo, p = row[C_IN], row[C_OUT], row[_GAMMA]
    n = d * R
    g = work[W_DELTA, oo:oo + n]
    copy_into(work[W_DZ, oo:oo + n], g)
    if not need_input:
        return
    gin = work[W_DELTA, xi:xi + n]
    xh = work[W_ACT, row[_XHAT]:row[_XHAT] + n]
    rstd = work[W_ACT, row[_RSTD]:row[_RSTD] + R]
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
    oo, p = row[C_OUT], row[_GAMMA]
    n = d * R
    e = work[W_DZ, oo:oo + n]
    xh = work[W_ACT, row[_XHAT]:row[_XHAT] + n]
    gg = work[W_DZ, row[_GRAD_GAMMA]:row[_GRAD_GAMMA] + d]
    gb = work[W_DZ, row[_GRAD_BETA]:row[_GRAD_BETA] + d]
    gg[:] = np.float32(0.0)
    gb[:] = np.float32(0.0)
    for r in range(R):
        for j in range(d):
            gg[j] += e[r * d + j] * xh[r * d + j]
            gb[j] += e[r * d + j]
    n2 = update_vec(pbuf, p, d, gg, coef_w, lim, va, vb, vc, accumulate)
    if shift:
        n2 += update_vec(pbuf, row[_BETA], d, gb, coef_b, lim, va, vb, vc, accumulate)
    return np.float64(n2)


LAYER_NORM_KERNELS = RMS_NORM_KERNELS = Kernels(norm_forward, norm_signal, norm_update)
