"""Compiled LSTM kernels: forward over the steps, backprop through time within the sample.

Shapes: x (T*F,) at the input slot; parameters "W" (4H, F), "U" (4H, H), "b" (4H,) (gates i,
f, g, o); output h_{T-1} (H,) or all states (T*H,). Scratch segments in the ``W_ACT`` row:
"gates" (T*4H), "cells" c (T*H), "tanh_cells" (T*H), "states" h (T*H), "grad_gates" dz (T*4H),
"grad_state" dh (H), "grad_cell" dc (H), "grads" (laid out like the parameters). The row holds
the offset of each segment and parameter under its name. Row dims: T, F, H, return_sequences.
"""

import numpy as np

from tweenstream.models.lstm import LSTM_KIND
from tweenstream.runtime.activations import fast_tanh
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
_STEPS = dim(LSTM_KIND, "steps")
_FEATURES = dim(LSTM_KIND, "features")
_UNITS = dim(LSTM_KIND, "units")
_SEQUENCES = dim(LSTM_KIND, "sequences")
# offsets of the scratch segments (work row) and parameter tensors (pbuf row)
_GATES, _CELLS = dim(LSTM_KIND, "gates"), dim(LSTM_KIND, "cells")
_TANH_CELLS, _STATES = dim(LSTM_KIND, "tanh_cells"), dim(LSTM_KIND, "states")
_GRAD_GATES, _GRAD_STATE = dim(LSTM_KIND, "grad_gates"), dim(LSTM_KIND, "grad_state")
_GRAD_CELL, _GRADS = dim(LSTM_KIND, "grad_cell"), dim(LSTM_KIND, "grads")
_W, _U, _BIAS = dim(LSTM_KIND, "W"), dim(LSTM_KIND, "U"), dim(LSTM_KIND, "b")

_ONE = np.float32(1.0)


@inline
def _sigmoid(v):
    return _ONE / (_ONE + np.exp(-v))


@kernel
def lstm_forward(row, pbuf, work):
    """Gates, cell and state of every step; caches them in scratch; writes the output slot."""
    T, F, H, seq = row[_STEPS], row[_FEATURES], row[_UNITS], row[_SEQUENCES]
    xi, oo = row[C_IN], row[C_OUT]
    w0, u0, b0 = row[_W], row[_U], row[_BIAS]
    W = matrix_f32(pbuf[P_PARAM, w0:w0 + 4 * H * F], 4 * H, F)
    U = matrix_f32(pbuf[P_PARAM, u0:u0 + 4 * H * H], 4 * H, H)
    b = pbuf[P_PARAM, b0:b0 + 4 * H]
    A, C, TC, HS = row[_GATES], row[_CELLS], row[_TANH_CELLS], row[_STATES]
    for t in range(T):
        x = work[W_ACT, xi + t * F:xi + (t + 1) * F]
        gates = work[W_ACT, A + t * 4 * H:A + (t + 1) * 4 * H]
        for o in range(4 * H):
            s = b[o]
            for j in range(F):
                s += W[o, j] * x[j]
            if t > 0:
                prev = work[W_ACT, HS + (t - 1) * H:HS + t * H]
                for k in range(H):
                    s += U[o, k] * prev[k]
            gates[o] = fast_tanh(s) if H * 2 <= o < H * 3 else _sigmoid(s)
        for k in range(H):
            c_prev = work[W_ACT, C + (t - 1) * H + k] if t > 0 else np.float32(0.0)
            c = gates[H + k] * c_prev + gates[k] * gates[2 * H + k]
            work[W_ACT, C + t * H + k] = c
            tc = fast_tanh(c)
            work[W_ACT, TC + t * H + k] = tc
            work[W_ACT, HS + t * H + k] = gates[3 * H + k] * tc
    n = T * H if seq else H
    first = HS if seq else HS + (T - 1) * H
    copy_into(work[W_ACT, oo:oo + n], work[W_ACT, first:first + n])
    copy_into(work[W_PRE, oo:oo + n], work[W_ACT, first:first + n])
@kernel
def lstm_backprop(row, pbuf, work, src, need_input, grads):
    """Backprop through time from the upstream signal in work row ``src`` at the output slot."""
    T, F, H, seq = row[_STEPS], row[_FEATURES], row[_UNITS], row[_SEQUENCES]
    xi, oo = row[C_IN], row[C_OUT]
    w0, u0 = row[_W], row[_U]
    W = matrix_f32(pbuf[P_PARAM, w0:w0 + 4 * H * F], 4 * H, F)
    U = matrix_f32(pbuf[P_PARAM, u0:u0 + 4 * H * H], 4 * H, H)
    A, C, TC, HS = row[_GATES], row[_CELLS], row[_TANH_CELLS], row[_STATES]
    DZ, DH, DC, G = row[_GRAD_GATES], row[_GRAD_STATE], row[_GRAD_CELL], row[_GRADS]
    gW = matrix_f32(work[W_ACT, G:G + 4 * H * F], 4 * H, F)
    gU = matrix_f32(work[W_ACT, G + 4 * H * F:G + 4 * H * F + 4 * H * H], 4 * H, H)
    gb = work[W_ACT, G + 4 * H * F + 4 * H * H:G + 4 * H * F + 4 * H * H + 4 * H]
    dh = work[W_ACT, DH:DH + H]
    dc = work[W_ACT, DC:DC + H]
    up = work[src, oo:oo + (T * H if seq else H)]
    dh[:] = np.float32(0.0)
    dc[:] = np.float32(0.0)
    if grads:
        work[W_ACT, G:G + 4 * H * F + 4 * H * H + 4 * H] = np.float32(0.0)
    for t in range(T - 1, -1, -1):
        if seq:
            for k in range(H):
                dh[k] += up[t * H + k]
        elif t == T - 1:
            for k in range(H):
                dh[k] += up[k]
        gates = work[W_ACT, A + t * 4 * H:A + (t + 1) * 4 * H]
        dz = work[W_ACT, DZ + t * 4 * H:DZ + (t + 1) * 4 * H]
        for k in range(H):
            i, f, g, o = gates[k], gates[H + k], gates[2 * H + k], gates[3 * H + k]
            tc = work[W_ACT, TC + t * H + k]
            c_prev = work[W_ACT, C + (t - 1) * H + k] if t > 0 else np.float32(0.0)
            dck = dc[k] + dh[k] * o * (_ONE - tc * tc)
            dz[k] = dck * g * i * (_ONE - i)
            dz[H + k] = dck * c_prev * f * (_ONE - f)
            dz[2 * H + k] = dck * i * (_ONE - g * g)
            dz[3 * H + k] = dh[k] * tc * o * (_ONE - o)
            dc[k] = dck * f
        if need_input:
            gin = work[W_DELTA, xi + t * F:xi + (t + 1) * F]
            gin[:] = np.float32(0.0)
            for o in range(4 * H):
                for j in range(F):
                    gin[j] += W[o, j] * dz[o]
        if grads:
            x = work[W_ACT, xi + t * F:xi + (t + 1) * F]
            for o in range(4 * H):
                for j in range(F):
                    gW[o, j] += dz[o] * x[j]
                gb[o] += dz[o]
                if t > 0:
                    prev = work[W_ACT, HS + (t - 1) * H:HS + t * H]
                    for k in range(H):
                        gU[o, k] += dz[o] * prev[k]
        dh[:] = np.float32(0.0)
        for o in range(4 * H):
            for k in range(H):
                dh[k] += U[o, k] * dz[o]


@kernel
def lstm_signal(row, pbuf, work, need_input):
    """dz at the output is g (the nonlinearities are inside); g of the input through time."""
    oo, n = row[C_OUT], row[C_NOUT]
    copy_into(work[W_DZ, oo:oo + n], work[W_DELTA, oo:oo + n])
    if need_input:
        lstm_backprop(row, pbuf, work, _I64(W_DELTA), _B(True), _B(False))


@kernel
def lstm_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """Gradients of the local error e = W_DZ at the output through time, then the shared rule."""
    F, H = row[_FEATURES], row[_UNITS]
    lstm_backprop(row, pbuf, work, _I64(W_DZ), _B(False), _B(True))
    nw = 4 * H * F + 4 * H * H  # W then U, then the 4H biases; "grads" has the same layout
    return update_stored(pbuf, work, row[_W], row[_GRADS], nw, 4 * H, coef_w, coef_b, lim, va,
                         vb, vc, accumulate)


@kernel
def lstm_project_target(row, pbuf, work, lo, hi):
    """Heuristic target of each input step through the four gates' input weights, summed."""
    T, F, H, seq = row[_STEPS], row[_FEATURES], row[_UNITS], row[_SEQUENCES]
    xi, oo, w0 = row[C_IN], row[C_OUT], row[_W]
    W = matrix_f32(pbuf[P_PARAM, w0:w0 + 4 * H * F], 4 * H, F)
    # borrowed space: the W_DZ row (unused by the segments, which live in W_ACT) from the start
    # of this layer's scratch area, row[C_S]
    s0 = row[C_S]
    den = work[W_DZ, s0:s0 + F]
    for t in range(T):
        base = oo + (t * H if seq else 0)
        tau = work[W_TGT, base:base + H]
        num = work[W_TGT, xi + t * F:xi + (t + 1) * F]
        num[:] = np.float32(0.0)
        den[:] = np.float32(0.0)
        for k in range(H):
            v = tau[k]
            if v != v:
                continue
            for j in range(F):
                w = W[k, j] + W[H + k, j] + W[2 * H + k, j] + W[3 * H + k, j]
                num[j] += w * v
                den[j] += abs(w)
        for j in range(F):
            if den[j] <= np.float32(0.01):
                num[j] = np.float32(np.nan)
            else:
                num[j] = min(max(num[j] / den[j], lo), hi)


LSTM_KERNELS = Kernels(lstm_forward, lstm_signal, lstm_update, lstm_project_target)
