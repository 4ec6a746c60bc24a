"""Compiled MultiHeadAttention kernels.

Shapes: x (T*d,) at the input slot; parameters "W_q", "W_k", "W_v", "W_o" (d, d) then "b_q",
"b_k", "b_v", "b_o" (d,); output (T*d,). Scratch segments in the ``W_ACT`` row: "qkv" (Q, K, V:
T*d each), "weights" (attention weights A: heads*T*T), "context" (C: T*d), "grad_context" (dC:
T*d), "grad_qkv" (dQ, dK, dV: T*d each), "grad_weights" (dA: T*T), "grads" (laid out like the
parameters). The row holds the offset of each segment and parameter under its name. Row dims:
T, d, heads, causal.
"""

import numpy as np

from tweenstream.models.attention import ATTENTION
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
from tweenstream.runtime.targets import project_target
from tweenstream.runtime.unmanaged import block3_f32, copy_into, matrix_f32
from tweenstream.runtime.update import update_stored

# typed, not literal, arguments: each literal value would compile the callee once more
_I64, _B = np.int64, np.bool_

# row integers, by the names the kind declares
_STEPS = dim(ATTENTION, "steps")
_D = dim(ATTENTION, "d")
_HEADS = dim(ATTENTION, "heads")
_CAUSAL = dim(ATTENTION, "causal")
# offsets of the scratch segments (work row) and parameter tensors (pbuf row)
_QKV, _ATTN_WEIGHTS = dim(ATTENTION, "qkv"), dim(ATTENTION, "weights")
_CONTEXT, _GRAD_CONTEXT = dim(ATTENTION, "context"), dim(ATTENTION, "grad_context")
_GRAD_QKV, _GRAD_ATTN_WEIGHTS = dim(ATTENTION, "grad_qkv"), dim(ATTENTION, "grad_weights")
_GRADS = dim(ATTENTION, "grads")
_WEIGHTS = tuple(dim(ATTENTION, f"W_{n}") for n in "qkvo")  # by k: 0 q, 1 k, 2 v, 3 o
_BIASES = tuple(dim(ATTENTION, f"b_{n}") for n in "qkvo")

_UNBOUNDED_LO, _UNBOUNDED_HI = np.float32(-np.inf), np.float32(np.inf)  # no clamp in between


@inline
def _dims(row):
    T, d, H, causal = row[_STEPS], row[_D], row[_HEADS], row[_CAUSAL]
    return T, d, H, causal, d // H


@inline
def _weight(pbuf, row, k, d):
    """Weight matrix (d, d): 0 W_q, 1 W_k, 2 W_v, 3 W_o."""
    p = row[_WEIGHTS[k]]
    return matrix_f32(pbuf[P_PARAM, p:p + d * d], d, d)


@inline
def _bias(pbuf, row, k, d):
    """Bias (d,): 0 b_q, 1 b_k, 2 b_v, 3 b_o."""
    p = row[_BIASES[k]]
    return pbuf[P_PARAM, p:p + d]


@inline
def _buf(work, row, k, T, d):
    """Scratch matrices (T, d): 0 Q, 1 K, 2 V (segment "qkv"), 3 C ("context"), 4 dC
    ("grad_context"), 5 dQ, 6 dK, 7 dV ("grad_qkv")."""
    if k < 3:
        start = row[_QKV] + k * T * d
    elif k == 3:
        start = row[_CONTEXT]
    elif k == 4:
        start = row[_GRAD_CONTEXT]
    else:
        start = row[_GRAD_QKV] + (k - 5) * T * d
    return matrix_f32(work[W_ACT, start:start + T * d], T, d)


@kernel
def attention_forward(row, pbuf, work):
    """Q, K, V projections, per-head softmax attention, output projection; caches all."""
    T, d, H, causal, dk = _dims(row)
    xi, oo, a0 = row[C_IN], row[C_OUT], row[_ATTN_WEIGHTS]
    x = matrix_f32(work[W_ACT, xi:xi + T * d], T, d)
    for k in range(3):
        W, b, M = _weight(pbuf, row, k, d), _bias(pbuf, row, k, d), _buf(work, row, k, T, d)
        for t in range(T):
            for o in range(d):
                acc = b[o]
                for j in range(d):
                    acc += W[o, j] * x[t, j]
                M[t, o] = acc
    Q, K, V, Cm = _buf(work, row, 0, T, d), _buf(work, row, 1, T, d), \
        _buf(work, row, 2, T, d), _buf(work, row, 3, T, d)
    A = block3_f32(work[W_ACT, a0:a0 + H * T * T], H, T, T)
    scale = 1.0 / np.sqrt(dk)
    for h in range(H):
        c0 = h * dk
        for i in range(T):
            last = i + 1 if causal else T
            top = -np.inf
            for j in range(last):
                s = 0.0
                for k in range(dk):
                    s += Q[i, c0 + k] * K[j, c0 + k]
                s *= scale
                A[h, i, j] = s
                top = max(top, s)
            total = 0.0
            for j in range(last):
                e = np.exp(A[h, i, j] - top)
                A[h, i, j] = e
                total += e
            for j in range(T):
                A[h, i, j] = A[h, i, j] / total if j < last else np.float32(0.0)
            for k in range(dk):
                acc = 0.0
                for j in range(last):
                    acc += A[h, i, j] * V[j, c0 + k]
                Cm[i, c0 + k] = acc
    Wo, bo = _weight(pbuf, row, 3, d), _bias(pbuf, row, 3, d)
    out = matrix_f32(work[W_ACT, oo:oo + T * d], T, d)
    for t in range(T):
        for o in range(d):
            acc = bo[o]
            for j in range(d):
                acc += Wo[o, j] * Cm[t, j]
            out[t, o] = acc
    copy_into(work[W_PRE, oo:oo + T * d], work[W_ACT, oo:oo + T * d])
@kernel
def attention_backprop(row, pbuf, work, src, need_input, grads):
    """Backprop of the upstream signal in work row ``src`` (output slot) through the layer."""
    T, d, H, causal, dk = _dims(row)
    xi, oo, a0 = row[C_IN], row[C_OUT], row[_ATTN_WEIGHTS]
    x = matrix_f32(work[W_ACT, xi:xi + T * d], T, d)
    G = matrix_f32(work[src, oo:oo + T * d], T, d)
    Q, K, V, Cm = _buf(work, row, 0, T, d), _buf(work, row, 1, T, d), \
        _buf(work, row, 2, T, d), _buf(work, row, 3, T, d)
    dC, dQ, dK, dV = _buf(work, row, 4, T, d), _buf(work, row, 5, T, d), \
        _buf(work, row, 6, T, d), _buf(work, row, 7, T, d)
    A = block3_f32(work[W_ACT, a0:a0 + H * T * T], H, T, T)
    da0 = row[_GRAD_ATTN_WEIGHTS]
    dA = matrix_f32(work[W_ACT, da0:da0 + T * T], T, T)
    g0 = row[_GRADS]
    if grads:
        work[W_ACT, g0:g0 + 4 * d * d + 4 * d] = np.float32(0.0)
    Wo = _weight(pbuf, row, 3, d)
    gWo = matrix_f32(work[W_ACT, g0 + 3 * d * d:g0 + 4 * d * d], d, d)
    gbo = work[W_ACT, g0 + 4 * d * d + 3 * d:g0 + 4 * d * d + 4 * d]
    for t in range(T):
        for j in range(d):
            acc = 0.0
            for o in range(d):
                acc += Wo[o, j] * G[t, o]
            dC[t, j] = acc
        if grads:
            for o in range(d):
                gbo[o] += G[t, o]
                for j in range(d):
                    gWo[o, j] += G[t, o] * Cm[t, j]
    dQ[:, :] = np.float32(0.0)
    dK[:, :] = np.float32(0.0)
    dV[:, :] = np.float32(0.0)
    scale = np.float32(1.0 / np.sqrt(dk))
    for h in range(H):
        c0 = h * dk
        for i in range(T):
            last = i + 1 if causal else T
            mix = 0.0
            for j in range(last):
                s = 0.0
                for k in range(dk):
                    s += dC[i, c0 + k] * V[j, c0 + k]
                    dV[j, c0 + k] += A[h, i, j] * dC[i, c0 + k]
                dA[i, j] = s
                mix += A[h, i, j] * s
            for j in range(last):
                dS = A[h, i, j] * (dA[i, j] - mix) * scale
                for k in range(dk):
                    dQ[i, c0 + k] += dS * K[j, c0 + k]
                    dK[j, c0 + k] += dS * Q[i, c0 + k]
    if need_input:
        gin = matrix_f32(work[W_DELTA, xi:xi + T * d], T, d)
        gin[:, :] = np.float32(0.0)
    for k in range(3):
        W = _weight(pbuf, row, k, d)
        D = _buf(work, row, 5 + k, T, d)
        gW = matrix_f32(work[W_ACT, g0 + k * d * d:g0 + (k + 1) * d * d], d, d)
        gb = work[W_ACT, g0 + 4 * d * d + k * d:g0 + 4 * d * d + (k + 1) * d]
        for t in range(T):
            for o in range(d):
                v = D[t, o]
                if need_input:
                    for j in range(d):
                        gin[t, j] += W[o, j] * v
                if grads:
                    gb[o] += v
                    for j in range(d):
                        gW[o, j] += v * x[t, j]


@kernel
def attention_signal(row, pbuf, work, need_input):
    """dz = g (no activation at the output); g of the input through the layer."""
    oo, n = row[C_OUT], row[C_NOUT]
    copy_into(work[W_DZ, oo:oo + n], work[W_DELTA, oo:oo + n])
    if need_input:
        attention_backprop(row, pbuf, work, _I64(W_DELTA), _B(True), _B(False))


@kernel
def attention_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """Gradients of the local error e = W_DZ at the output, then the shared rule."""
    d = row[_D]
    attention_backprop(row, pbuf, work, _I64(W_DZ), _B(False), _B(True))
    # parameters and "grads" alike: the four weights, then the four biases
    return update_stored(pbuf, work, row[_WEIGHTS[0]], row[_GRADS], 4 * d * d, 4 * d, coef_w,
                         coef_b, lim, va, vb, vc, accumulate)


@kernel
def attention_project_target(row, pbuf, work, lo, hi):
    """Heuristic input target: the output target projected back through the output projection,
    then through the value projection (each weight-normalised, as for Dense)."""
    T, d, _, _, _ = _dims(row)
    xi, oo = row[C_IN], row[C_OUT]
    Wo, Wv = _weight(pbuf, row, 3, d), _weight(pbuf, row, 2, d)
    # borrowed space: the W_DZ row (unused by the segments, which live in W_ACT) from the start
    # of this layer's scratch area, row[C_S]
    s0 = row[C_S]
    tau = work[W_DZ, s0:s0 + d]
    den = work[W_DZ, s0 + d:s0 + 2 * d]
    for t in range(T):
        tgt = work[W_TGT, oo + t * d:oo + (t + 1) * d]
        project_target(Wo, tgt, tau, den, _UNBOUNDED_LO, _UNBOUNDED_HI)  # the value's target
        project_target(Wv, tau, work[W_TGT, xi + t * d:xi + (t + 1) * d], den, lo, hi)


ATTENTION_KERNELS = Kernels(attention_forward, attention_signal, attention_update,
                            attention_project_target)
