"""Compiled RNN kernels: forward over the steps, backprop through time within the sample.

Shapes: x (T*F,) at the input slot; W_x (H, F), W_h (H, H), b (H,) at the row's offsets of those
names; output h_{T-1} (H,) or all states (T*H,). Scratch segments in the ``W_ACT`` row: "states"
h (T*H), "pre" z (T*H), "grad_pre" dz (T*H), "grad_state" dh (H), "grads" laid out like the
parameters (H*F + H*H + H). Row dims: steps T, features F, units H, sequences.
"""

import numpy as np

from tweenstream.models.rnn import RNN_KIND
from tweenstream.runtime.activations import activate
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
from tweenstream.runtime.numba_config import kernel
from tweenstream.runtime.targets import project_target
from tweenstream.runtime.unmanaged import copy_into, matrix_f32
from tweenstream.runtime.update import update_stored

# typed, not literal, arguments: each literal value would compile the callee once more
_I64, _B = np.int64, np.bool_

# row integers, by the names the kind declares
_STEPS = dim(RNN_KIND, "steps")
_FEATURES = dim(RNN_KIND, "features")
_UNITS = dim(RNN_KIND, "units")
_SEQUENCES = dim(RNN_KIND, "sequences")
_HS, _ZS, _DZS = dim(RNN_KIND, "states"), dim(RNN_KIND, "pre"), dim(RNN_KIND, "grad_pre")
_DH, _GRADS = dim(RNN_KIND, "grad_state"), dim(RNN_KIND, "grads")
_WX, _WH, _BIAS = dim(RNN_KIND, "W_x"), dim(RNN_KIND, "W_h"), dim(RNN_KIND, "b")

_TANH = 3


@kernel
def rnn_forward(row, pbuf, work):
    """h_t = tanh(W_x x_t + W_h h_{t-1} + b); caches h and z; writes the output slot."""
    T, F, H, seq = row[_STEPS], row[_FEATURES], row[_UNITS], row[_SEQUENCES]
    xi, oo = row[C_IN], row[C_OUT]
    Wx = matrix_f32(pbuf[P_PARAM, row[_WX]:row[_WX] + H * F], H, F)
    Wh = matrix_f32(pbuf[P_PARAM, row[_WH]:row[_WH] + H * H], H, H)
    b = pbuf[P_PARAM, row[_BIAS]:row[_BIAS] + H]
    hs = work[W_ACT, row[_HS]:row[_HS] + T * H]
    zs = work[W_ACT, row[_ZS]:row[_ZS] + T * H]
    for t in range(T):
        x = work[W_ACT, xi + t * F:xi + (t + 1) * F]
        z = zs[t * H:(t + 1) * H]
        for o in range(H):
            s = b[o]
            for j in range(F):
                s += Wx[o, j] * x[j]
            if t > 0:
                prev = hs[(t - 1) * H:t * H]
                for k in range(H):
                    s += Wh[o, k] * prev[k]
            z[o] = s
        activate(z, hs[t * H:(t + 1) * H], _TANH)
    n = T * H if seq else H
    first = 0 if seq else (T - 1) * H
    copy_into(work[W_ACT, oo:oo + n], hs[first:first + n])
    copy_into(work[W_PRE, oo:oo + n], zs[first:first + n])
@kernel
def rnn_backprop(row, pbuf, work, src, need_input, grads):
    """Backprop through time from the upstream signal in work row ``src`` at the output slot.

    Writes dz per step to scratch; with ``need_input`` g of the input (W_DELTA at the input
    slot); with ``grads`` the parameter gradients to scratch (overwritten, not accumulated).
    """
    T, F, H, seq = row[_STEPS], row[_FEATURES], row[_UNITS], row[_SEQUENCES]
    xi, oo = row[C_IN], row[C_OUT]
    Wx = matrix_f32(pbuf[P_PARAM, row[_WX]:row[_WX] + H * F], H, F)
    Wh = matrix_f32(pbuf[P_PARAM, row[_WH]:row[_WH] + H * H], H, H)
    hs = work[W_ACT, row[_HS]:row[_HS] + T * H]
    dzs = work[W_ACT, row[_DZS]:row[_DZS] + T * H]
    dh = work[W_ACT, row[_DH]:row[_DH] + H]
    g0 = row[_GRADS]  # gradients laid out like the parameters: W_x, W_h, b
    gWx = matrix_f32(work[W_ACT, g0:g0 + H * F], H, F)
    gWh = matrix_f32(work[W_ACT, g0 + H * F:g0 + H * F + H * H], H, H)
    gb = work[W_ACT, g0 + H * F + H * H:g0 + H * F + H * H + H]
    up = work[src, oo:oo + (T * H if seq else H)]
    dh[:] = np.float32(0.0)
    if grads:
        work[W_ACT, g0:g0 + H * F + H * H + H] = np.float32(0.0)
    for t in range(T - 1, -1, -1):
        if seq:
            for o in range(H):
                dh[o] += up[t * H + o]
        elif t == T - 1:
            for o in range(H):
                dh[o] += up[o]
        h = hs[t * H:(t + 1) * H]
        dz = dzs[t * H:(t + 1) * H]
        for o in range(H):
            dz[o] = dh[o] * (np.float32(1.0) - h[o] * h[o])
        if need_input:
            gin = work[W_DELTA, xi + t * F:xi + (t + 1) * F]
            gin[:] = np.float32(0.0)
            for o in range(H):
                for j in range(F):
                    gin[j] += Wx[o, j] * dz[o]
        if grads:
            x = work[W_ACT, xi + t * F:xi + (t + 1) * F]
            for o in range(H):
                for j in range(F):
                    gWx[o, j] += dz[o] * x[j]
                gb[o] += dz[o]
                if t > 0:
                    prev = hs[(t - 1) * H:t * H]
                    for k in range(H):
                        gWh[o, k] += dz[o] * prev[k]
        dh[:] = np.float32(0.0)
        for o in range(H):
            for k in range(H):
                dh[k] += Wh[o, k] * dz[o]


@kernel
def rnn_signal(row, pbuf, work, need_input):
    """dz at the output is g (the tanh is inside); g of the input by backprop through time."""
    oo, n = row[C_OUT], row[C_NOUT]
    copy_into(work[W_DZ, oo:oo + n], work[W_DELTA, oo:oo + n])
    if need_input:
        rnn_backprop(row, pbuf, work, _I64(W_DELTA), _B(True), _B(False))


@kernel
def rnn_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """Gradients of the local error e = W_DZ at the output through time, then the shared rule."""
    F, H = row[_FEATURES], row[_UNITS]
    rnn_backprop(row, pbuf, work, _I64(W_DZ), _B(False), _B(True))
    nw = H * F + H * H
    return update_stored(pbuf, work, row[_WX], row[_GRADS], nw, H, coef_w, coef_b, lim, va, vb,
                         vc, accumulate)


@kernel
def rnn_project_target(row, pbuf, work, lo, hi):
    """Heuristic target of each input step through the input weights W_x (TWEENING.md), from
    the target of that step's state (or of the last state for every step)."""
    T, F, H, seq = row[_STEPS], row[_FEATURES], row[_UNITS], row[_SEQUENCES]
    xi, oo = row[C_IN], row[C_OUT]
    Wx = matrix_f32(pbuf[P_PARAM, row[_WX]:row[_WX] + H * F], H, F)
    den = work[W_DZ, row[C_S]:row[C_S] + F]  # the start of scratch, borrowed in the W_DZ row
    for t in range(T):
        tau = work[W_TGT, oo + (t * H if seq else 0):oo + (t * H if seq else 0) + H]
        num = work[W_TGT, xi + t * F:xi + (t + 1) * F]
        project_target(Wx, tau, num, den, lo, hi)


RNN_KERNELS = Kernels(rnn_forward, rnn_signal, rnn_update, rnn_project_target)
