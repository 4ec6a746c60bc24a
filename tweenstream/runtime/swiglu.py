"""Compiled SwiGLU kernels (per row of the last axis).

Shapes: x (R*d,) at the input slot; parameters "W_g" (h, d), "W_u" (h, d), "W_d" (o, h), "b_g"
(h,), "b_u" (h,), "b_d" (o,); output (R*o,). Scratch segments in the ``W_ACT`` row:
"rows_cache" (gate, up, s per row: 3*R*h), "grad_hidden" (ds, dg, du: 3h), "grads" (laid out
like the parameters). The row holds the offset of each segment and parameter under its name.
Row dims: R, d, h, o.
"""

import numpy as np

from tweenstream.models.swiglu import SWIGLU
from tweenstream.runtime.kernels import Kernels
from tweenstream.runtime.layout import (
    C_IN,
    C_NOUT,
    C_OUT,
    C_S,
    P_PARAM,
    W_ACT,
    W_DELTA,
    W_DZ,
    W_PRE,
    W_TGT,
    dim,
)
from tweenstream.runtime.numba_config import inline, kernel
from tweenstream.runtime.unmanaged import copy_into, matrix_f32
from tweenstream.runtime.update import update_stored

# typed, not literal, arguments: each literal value would compile the callee once more
_I64, _B = np.int64, np.bool_

# row integers, by the names the kind declares
_ROWS = dim(SWIGLU, "rows")
_D = dim(SWIGLU, "d")
_HIDDEN = dim(SWIGLU, "hidden")
_OUT = dim(SWIGLU, "out")
# offsets of the scratch segments (work row) and parameter tensors (pbuf row)
_ROWS_CACHE, _GRAD_HIDDEN = dim(SWIGLU, "rows_cache"), dim(SWIGLU, "grad_hidden")
_GRADS = dim(SWIGLU, "grads")
_W_G, _W_U, _W_D = dim(SWIGLU, "W_g"), dim(SWIGLU, "W_u"), dim(SWIGLU, "W_d")
_B_G, _B_U, _B_D = dim(SWIGLU, "b_g"), dim(SWIGLU, "b_u"), dim(SWIGLU, "b_d")

_ONE = np.float32(1.0)


@inline
def _parts(row, pbuf):
    R, d, h, o = row[_ROWS], row[_D], row[_HIDDEN], row[_OUT]
    wg, wu, wd = row[_W_G], row[_W_U], row[_W_D]
    bg, bu, bd = row[_B_G], row[_B_U], row[_B_D]
    Wg = matrix_f32(pbuf[P_PARAM, wg:wg + h * d], h, d)
    Wu = matrix_f32(pbuf[P_PARAM, wu:wu + h * d], h, d)
    Wd = matrix_f32(pbuf[P_PARAM, wd:wd + o * h], o, h)
    return R, d, h, o, Wg, Wu, Wd, pbuf[P_PARAM, bg:bg + h], pbuf[P_PARAM, bu:bu + h], \
        pbuf[P_PARAM, bd:bd + o]


@kernel
def swiglu_forward(row, pbuf, work):
    """Per row: gate, up, s = silu(gate) * up, y = W_d s + b_d; caches gate, up, s."""
    R, d, h, o, Wg, Wu, Wd, bg, bu, bd = _parts(row, pbuf)
    xi, oo, c0 = row[C_IN], row[C_OUT], row[_ROWS_CACHE]
    for r in range(R):
        x = work[W_ACT, xi + r * d:xi + (r + 1) * d]
        base = c0 + r * 3 * h
        gate = work[W_ACT, base:base + h]
        up = work[W_ACT, base + h:base + 2 * h]
        s = work[W_ACT, base + 2 * h:base + 3 * h]
        for k in range(h):
            a = bg[k]
            b = bu[k]
            for j in range(d):
                a += Wg[k, j] * x[j]
                b += Wu[k, j] * x[j]
            gate[k] = a
            up[k] = b
            s[k] = a / (_ONE + np.exp(-a)) * b
        y = work[W_ACT, oo + r * o:oo + (r + 1) * o]
        for m in range(o):
            acc = bd[m]
            for k in range(h):
                acc += Wd[m, k] * s[k]
            y[m] = acc
    copy_into(work[W_PRE, oo:oo + R * o], work[W_ACT, oo:oo + R * o])
@kernel
def swiglu_backprop(row, pbuf, work, src, need_input, grads):
    """Backprop of the upstream signal in work row ``src`` (output slot) through each row."""
    R, d, h, o, Wg, Wu, Wd, _, _, _ = _parts(row, pbuf)
    xi, oo, c0 = row[C_IN], row[C_OUT], row[_ROWS_CACHE]
    t0 = row[_GRAD_HIDDEN]
    ds, dg, du = work[W_ACT, t0:t0 + h], work[W_ACT, t0 + h:t0 + 2 * h], \
        work[W_ACT, t0 + 2 * h:t0 + 3 * h]
    g0 = row[_GRADS]
    gWg = matrix_f32(work[W_ACT, g0:g0 + h * d], h, d)
    gWu = matrix_f32(work[W_ACT, g0 + h * d:g0 + 2 * h * d], h, d)
    gWd = matrix_f32(work[W_ACT, g0 + 2 * h * d:g0 + 2 * h * d + o * h], o, h)
    q = g0 + 2 * h * d + o * h
    gbg, gbu, gbd = work[W_ACT, q:q + h], work[W_ACT, q + h:q + 2 * h], \
        work[W_ACT, q + 2 * h:q + 2 * h + o]
    if grads:
        work[W_ACT, g0:q + 2 * h + o] = np.float32(0.0)
    for r in range(R):
        x = work[W_ACT, xi + r * d:xi + (r + 1) * d]
        base = c0 + r * 3 * h
        gate = work[W_ACT, base:base + h]
        up = work[W_ACT, base + h:base + 2 * h]
        s = work[W_ACT, base + 2 * h:base + 3 * h]
        e = work[src, oo + r * o:oo + (r + 1) * o]
        ds[:] = np.float32(0.0)
        for m in range(o):
            for k in range(h):
                ds[k] += Wd[m, k] * e[m]
            if grads:
                gbd[m] += e[m]
                for k in range(h):
                    gWd[m, k] += e[m] * s[k]
        for k in range(h):
            sig = _ONE / (_ONE + np.exp(-gate[k]))
            dg[k] = ds[k] * up[k] * sig * (_ONE + gate[k] * (_ONE - sig))
            du[k] = ds[k] * gate[k] * sig
        if need_input:
            gin = work[W_DELTA, xi + r * d:xi + (r + 1) * d]
            gin[:] = np.float32(0.0)
            for k in range(h):
                for j in range(d):
                    gin[j] += Wg[k, j] * dg[k] + Wu[k, j] * du[k]
        if grads:
            for k in range(h):
                gbg[k] += dg[k]
                gbu[k] += du[k]
                for j in range(d):
                    gWg[k, j] += dg[k] * x[j]
                    gWu[k, j] += du[k] * x[j]


@kernel
def swiglu_signal(row, pbuf, work, need_input):
    """dz = g (no activation at the output); g of the input through the block."""
    oo, n = row[C_OUT], row[C_NOUT]
    copy_into(work[W_DZ, oo:oo + n], work[W_DELTA, oo:oo + n])
    if need_input:
        swiglu_backprop(row, pbuf, work, _I64(W_DELTA), _B(True), _B(False))


@kernel
def swiglu_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """Gradients of the local error e = W_DZ at the output, then the shared rule."""
    d, h, o = row[_D], row[_HIDDEN], row[_OUT]
    swiglu_backprop(row, pbuf, work, _I64(W_DZ), _B(False), _B(True))
    nw, nb = 2 * h * d + o * h, 2 * h + o  # parameters and "grads" alike: W_g, W_u, W_d, biases
    return update_stored(pbuf, work, row[_W_G], row[_GRADS], nw, nb, coef_w, coef_b, lim, va, vb,
                         vc, accumulate)


@kernel
def swiglu_project_target(row, pbuf, work, lo, hi):
    """Heuristic input target: the output target projected back through the down projection,
    then through the up projection (each weight-normalised, as for Dense)."""
    R, d, h, o, _, Wu, Wd, _, _, _ = _parts(row, pbuf)
    xi, oo = row[C_IN], row[C_OUT]
    # borrowed space: the W_DZ row (unused by the segments, which live in W_ACT) from the start
    # of this layer's scratch area, row[C_S]
    s0 = row[C_S]
    tau = work[W_DZ, s0:s0 + h]
    den_h = work[W_DZ, s0 + h:s0 + 2 * h]
    den_d = work[W_DZ, s0 + 2 * h:s0 + 2 * h + d]
    for r in range(R):
        t = work[W_TGT, oo + r * o:oo + (r + 1) * o]
        tau[:] = np.float32(0.0)
        den_h[:] = np.float32(0.0)
        for m in range(o):
            v = t[m]
            if v != v:
                continue
            for k in range(h):
                tau[k] += Wd[m, k] * v
                den_h[k] += abs(Wd[m, k])
        num = work[W_TGT, xi + r * d:xi + (r + 1) * d]
        num[:] = np.float32(0.0)
        den_d[:] = np.float32(0.0)
        for k in range(h):
            if den_h[k] <= np.float32(0.01):
                continue
            v = tau[k] / den_h[k]
            for j in range(d):
                num[j] += Wu[k, j] * v
                den_d[j] += abs(Wu[k, j])
        for j in range(d):
            if den_d[j] <= np.float32(0.01):
                num[j] = np.float32(np.nan)
            else:
                num[j] = min(max(num[j] / den_d[j], lo), hi)


SWIGLU_KERNELS = Kernels(swiglu_forward, swiglu_signal, swiglu_update, swiglu_project_target)
