"""Compiled Conv1D / Conv2D and pooling kernels (channels last; Conv1D has height 1).

Shapes: x (H, W, C) at the input slot, kernel W (F, kh, kw, C) and b (F,) at the row's "W" and
"b" offsets, output (Ho, Wo, F). Row integers: the ``CONV_DIMS`` and ``POOL_DIMS`` of
``models/conv.py``, by name. Conv scratch segment "grads": the gradients of W then b (``W_ACT``
row). Max-pool scratch segment "argmax": the flat input index of each window's maximum.
"""

import numpy as np

from tweenstream.models.conv import CONV2D, MAX_POOL
from tweenstream.runtime.activations import activate, times_derivative
from tweenstream.runtime.kernels import Kernels
from tweenstream.runtime.layout import (
    C_ACT,
    C_IN,
    C_NOUT,
    C_OUT,
    P_PARAM,
    W_ACT,
    W_DELTA,
    W_DZ,
    W_PRE,
    W_TGT,
    dim,
)
from tweenstream.runtime.numba_config import inline, kernel
from tweenstream.runtime.unmanaged import block3_f32, block4_f32, copy_into
from tweenstream.runtime.update import update_stored

# row integers, by the names the kinds declare (Conv1D and Conv2D share them, as do the pools)
_H, _W, _C = dim(CONV2D, "height"), dim(CONV2D, "width"), dim(CONV2D, "channels")
_KH, _KW, _STRIDE = dim(CONV2D, "kh"), dim(CONV2D, "kw"), dim(CONV2D, "stride")
_PT, _PL = dim(CONV2D, "pad_top"), dim(CONV2D, "pad_left")
_HO, _WO = dim(CONV2D, "out_height"), dim(CONV2D, "out_width")
_PH, _PW, _PC = dim(MAX_POOL, "height"), dim(MAX_POOL, "width"), dim(MAX_POOL, "channels")
_POOL, _PHO, _PWO = dim(MAX_POOL, "pool"), dim(MAX_POOL, "out_height"), dim(MAX_POOL, "out_width")
_AVERAGE = dim(MAX_POOL, "average")
_KW0, _B0, _GRADS = dim(CONV2D, "W"), dim(CONV2D, "b"), dim(CONV2D, "grads")
_ARGMAX = dim(MAX_POOL, "argmax")


@inline
def _geometry(row):
    Ho, Wo = row[_HO], row[_WO]
    return (row[_H], row[_W], row[_C], row[_KH], row[_KW], row[_STRIDE], row[_PT], row[_PL],
            Ho, Wo, row[C_NOUT] // (Ho * Wo))


@inline
def _pool_geometry(row):
    return (row[_PH], row[_PW], row[_PC], row[_POOL], row[_PHO], row[_PWO], row[_AVERAGE])


@kernel
def conv_forward(row, pbuf, work):
    """z = conv(x, W) + b, a = f(z); writes W_PRE and W_ACT at the output slot."""
    H, W, C, kh, kw, s, pt, pl, Ho, Wo, F = _geometry(row)
    xi, oo, p = row[C_IN], row[C_OUT], row[_KW0]
    x = block3_f32(work[W_ACT, xi:xi + H * W * C], H, W, C)
    K = block4_f32(pbuf[P_PARAM, p:p + F * kh * kw * C], F, kh, kw, C)
    b = pbuf[P_PARAM, row[_B0]:row[_B0] + F]
    z = block3_f32(work[W_PRE, oo:oo + Ho * Wo * F], Ho, Wo, F)
    for oy in range(Ho):
        for ox in range(Wo):
            for f in range(F):
                acc = b[f]
                for ky in range(kh):
                    iy = oy * s + ky - pt
                    if iy < 0 or iy >= H:
                        continue
                    for kx in range(kw):
                        ix = ox * s + kx - pl
                        if ix < 0 or ix >= W:
                            continue
                        for c in range(C):
                            acc += K[f, ky, kx, c] * x[iy, ix, c]
                z[oy, ox, f] = acc
    n = Ho * Wo * F
    activate(work[W_PRE, oo:oo + n], work[W_ACT, oo:oo + n], row[C_ACT])


@kernel
def conv_signal(row, pbuf, work, need_input):
    """dz = g * f'(z) into W_DZ; g_in = the transposed convolution of dz with W."""
    H, W, C, kh, kw, s, pt, pl, Ho, Wo, F = _geometry(row)
    xi, oo, p = row[C_IN], row[C_OUT], row[_KW0]
    n = Ho * Wo * F
    times_derivative(work[W_DELTA, oo:oo + n], work[W_PRE, oo:oo + n], work[W_ACT, oo:oo + n],
                     work[W_DZ, oo:oo + n], row[C_ACT])
    if not need_input:
        return
    dz = block3_f32(work[W_DZ, oo:oo + n], Ho, Wo, F)
    K = block4_f32(pbuf[P_PARAM, p:p + F * kh * kw * C], F, kh, kw, C)
    gin = block3_f32(work[W_DELTA, xi:xi + H * W * C], H, W, C)
    gin[:] = np.float32(0.0)
    for oy in range(Ho):
        for ox in range(Wo):
            for f in range(F):
                d = dz[oy, ox, f]
                for ky in range(kh):
                    iy = oy * s + ky - pt
                    if iy < 0 or iy >= H:
                        continue
                    for kx in range(kw):
                        ix = ox * s + kx - pl
                        if ix < 0 or ix >= W:
                            continue
                        for c in range(C):
                            gin[iy, ix, c] += K[f, ky, kx, c] * d


@kernel
def conv_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """dW[f, ky, kx, c] = sum over positions of e * x, db[f] = sum of e; then the shared rule."""
    H, W, C, kh, kw, s, pt, pl, Ho, Wo, F = _geometry(row)
    xi, oo, p, s0 = row[C_IN], row[C_OUT], row[_KW0], row[_GRADS]
    nw = F * kh * kw * C
    x = block3_f32(work[W_ACT, xi:xi + H * W * C], H, W, C)
    e = block3_f32(work[W_DZ, oo:oo + Ho * Wo * F], Ho, Wo, F)
    gK = block4_f32(work[W_ACT, s0:s0 + nw], F, kh, kw, C)
    gb = work[W_ACT, s0 + nw:s0 + nw + F]
    work[W_ACT, s0:s0 + nw + F] = np.float32(0.0)
    for oy in range(Ho):
        for ox in range(Wo):
            for f in range(F):
                ev = e[oy, ox, f]
                gb[f] += ev
                for ky in range(kh):
                    iy = oy * s + ky - pt
                    if iy < 0 or iy >= H:
                        continue
                    for kx in range(kw):
                        ix = ox * s + kx - pl
                        if ix < 0 or ix >= W:
                            continue
                        for c in range(C):
                            gK[f, ky, kx, c] += ev * x[iy, ix, c]
    return update_stored(pbuf, work, p, s0, nw, F, coef_w, coef_b, lim, va, vb, vc, accumulate)


@kernel
def conv_project_target(row, pbuf, work, lo, hi):
    """Heuristic input target: the weight-normalised transposed convolution of the output
    target (units without a target do not vote; weakly connected inputs keep theirs)."""
    H, W, C, kh, kw, s, pt, pl, Ho, Wo, F = _geometry(row)
    xi, oo, p = row[C_IN], row[C_OUT], row[_KW0]
    K = block4_f32(pbuf[P_PARAM, p:p + F * kh * kw * C], F, kh, kw, C)
    t = block3_f32(work[W_TGT, oo:oo + Ho * Wo * F], Ho, Wo, F)
    num = block3_f32(work[W_TGT, xi:xi + H * W * C], H, W, C)
    den = block3_f32(work[W_DZ, xi:xi + H * W * C], H, W, C)
    num[:] = np.float32(0.0)
    den[:] = np.float32(0.0)
    for oy in range(Ho):
        for ox in range(Wo):
            for f in range(F):
                v = t[oy, ox, f]
                if v != v:
                    continue
                for ky in range(kh):
                    iy = oy * s + ky - pt
                    if iy < 0 or iy >= H:
                        continue
                    for kx in range(kw):
                        ix = ox * s + kx - pl
                        if ix < 0 or ix >= W:
                            continue
                        for c in range(C):
                            num[iy, ix, c] += K[f, ky, kx, c] * v
                            den[iy, ix, c] += abs(K[f, ky, kx, c])
    flat_num = work[W_TGT, xi:xi + H * W * C]
    flat_den = work[W_DZ, xi:xi + H * W * C]
    for j in range(H * W * C):
        if flat_den[j] <= np.float32(0.01):
            flat_num[j] = np.float32(np.nan)
        else:
            flat_num[j] = min(max(flat_num[j] / flat_den[j], lo), hi)


@kernel
def pool_forward(row, pbuf, work):
    """Max (remembering where) or mean over p x p windows."""
    H, W, C, P, Ho, Wo, avg = _pool_geometry(row)
    xi, oo, s0 = row[C_IN], row[C_OUT], row[_ARGMAX]
    x = block3_f32(work[W_ACT, xi:xi + H * W * C], H, W, C)
    a = block3_f32(work[W_ACT, oo:oo + Ho * Wo * C], Ho, Wo, C)
    for oy in range(Ho):
        for ox in range(Wo):
            for c in range(C):
                best = x[oy * P, ox * P, c]
                where = (oy * P * W + ox * P) * C + c
                total = np.float32(0.0)
                for ky in range(P):
                    for kx in range(P):
                        v = x[oy * P + ky, ox * P + kx, c]
                        total += v
                        if v > best:
                            best = v
                            where = ((oy * P + ky) * W + ox * P + kx) * C + c
                if avg:
                    a[oy, ox, c] = total / np.float32(P * P)
                else:
                    a[oy, ox, c] = best
                    work[W_ACT, s0 + (oy * Wo + ox) * C + c] = np.float32(where)
    copy_into(work[W_PRE, oo:oo + Ho * Wo * C], work[W_ACT, oo:oo + Ho * Wo * C])
@kernel
def pool_signal(row, pbuf, work, need_input):
    """dz = g; g_in: to each window's maximum, or spread evenly for the mean."""
    H, W, C, P, Ho, Wo, avg = _pool_geometry(row)
    xi, oo, s0 = row[C_IN], row[C_OUT], row[_ARGMAX]
    n = Ho * Wo * C
    copy_into(work[W_DZ, oo:oo + n], work[W_DELTA, oo:oo + n])
    if not need_input:
        return
    g = block3_f32(work[W_DELTA, oo:oo + n], Ho, Wo, C)
    gin = work[W_DELTA, xi:xi + H * W * C]
    gin[:] = np.float32(0.0)
    gin3 = block3_f32(gin, H, W, C)
    share = np.float32(1.0 / (P * P))
    for oy in range(Ho):
        for ox in range(Wo):
            for c in range(C):
                if avg:
                    for ky in range(P):
                        for kx in range(P):
                            gin3[oy * P + ky, ox * P + kx, c] += g[oy, ox, c] * share
                else:
                    gin[int(work[W_ACT, s0 + (oy * Wo + ox) * C + c])] += g[oy, ox, c]


CONV_KERNELS = Kernels(conv_forward, conv_signal, conv_update, conv_project_target)
POOL_KERNELS = Kernels(pool_forward, pool_signal)
