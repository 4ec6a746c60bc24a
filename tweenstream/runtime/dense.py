"""Compiled Dense kernels: forward, backward signal, heuristic target projection, update.

Shapes (one sample): x (n_in,) at ``work[:, C_IN:...]``, W (n_out, n_in) row-major at
``pbuf[P_PARAM, C_P:]``, b (n_out,) right after W, z and a (n_out,) at the output slot.
Each kernel takes the layer's plan row and the shared buffers, trusts them, and writes in place.
"""

import numpy as np

from tweenstream.runtime.activations import act, dact
from tweenstream.runtime.layout import (
    C_ACT, C_IN, C_NIN, C_NOUT, C_OUT, C_P, P_ACC, P_PARAM, P_VEL, W_ACT, W_DELTA, W_DZ, W_PRE,
    W_TGT,
)
from tweenstream.runtime.numba_config import kernel
from tweenstream.runtime.update import apply_row


@kernel
def dense_forward(row, pbuf, work):
    """z = W x + b and a = f(z); writes ``work[W_PRE]`` and ``work[W_ACT]`` at the output slot."""
    nin, nout, xi, oo, p, code = row[C_NIN], row[C_NOUT], row[C_IN], row[C_OUT], row[C_P], row[C_ACT]
    P = pbuf[P_PARAM]
    A = work[W_ACT]
    Z = work[W_PRE]
    b0 = p + nin * nout
    for o in range(nout):
        s = P[b0 + o]
        base = p + o * nin
        for j in range(nin):
            s += P[base + j] * A[xi + j]
        Z[oo + o] = s
        A[oo + o] = act(s, code)


@kernel
def dense_signal(row, pbuf, work, need_input):
    """Chain rule through the layer: dz = g * f'(z) into ``W_DZ``; g_in = W^T dz into ``W_DELTA``.

    ``g`` is -dloss/da at the output slot; g_in is written only when ``need_input``.
    """
    nin, nout, xi, oo, p, code = row[C_NIN], row[C_NOUT], row[C_IN], row[C_OUT], row[C_P], row[C_ACT]
    P = pbuf[P_PARAM]
    G = work[W_DELTA]
    DZ = work[W_DZ]
    A = work[W_ACT]
    Z = work[W_PRE]
    for o in range(nout):
        DZ[oo + o] = G[oo + o] * dact(Z[oo + o], A[oo + o], code)
    if need_input:
        for j in range(nin):
            G[xi + j] = np.float32(0.0)
        for o in range(nout):
            d = DZ[oo + o]
            base = p + o * nin
            for j in range(nin):
                G[xi + j] += P[base + j] * d


@kernel
def dense_project_target(row, pbuf, work, lo, hi):
    """Heuristic target of the layer input: t_in[j] = sum_o W[o,j] t[o] / sum_o |W[o,j]|.

    Output units without a target (NaN) do not vote. Where the denominator is <= 0.01 the
    input keeps its own activation, marked NaN here and resolved once the forward pass has it.
    Writes ``work[W_TGT]`` at the input slot, using ``work[W_DZ]`` there as scratch.
    """
    nin, nout, xi, oo, p = row[C_NIN], row[C_NOUT], row[C_IN], row[C_OUT], row[C_P]
    P = pbuf[P_PARAM]
    T = work[W_TGT]
    S = work[W_DZ]
    for j in range(nin):
        T[xi + j] = np.float32(0.0)
        S[xi + j] = np.float32(0.0)
    for o in range(nout):
        t = T[oo + o]
        if t != t:
            continue
        base = p + o * nin
        for j in range(nin):
            w = P[base + j]
            T[xi + j] += w * t
            S[xi + j] += abs(w)
    for j in range(nin):
        if S[xi + j] <= np.float32(0.01):
            T[xi + j] = np.float32(np.nan)
        else:
            v = T[xi + j] / S[xi + j]
            T[xi + j] = min(max(v, lo), hi)


@kernel
def dense_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """Update W and b from the local error e = ``work[W_DZ]`` at the output slot.

    dW[o, :] = coef_w * e[o] * x and db = coef_b * e, each through ``apply_row`` (clip, momentum).
    Returns the new sum of W² and b² (0 when accumulating for a batch).
    """
    nin, nout, xi, oo, p = row[C_NIN], row[C_NOUT], row[C_IN], row[C_OUT], row[C_P]
    P = pbuf[P_PARAM]
    V = pbuf[P_VEL]
    ACC = pbuf[P_ACC]
    X = work[W_ACT]
    E = work[W_DZ]
    n2 = np.float32(0.0)
    for o in range(nout):
        n2 += apply_row(P, V, ACC, p + o * nin, nin, coef_w * E[oo + o], X, xi,
                        lim, va, vb, vc, accumulate)
    n2 += apply_row(P, V, ACC, p + nin * nout, nout, coef_b, E, oo, lim, va, vb, vc, accumulate)
    return np.float64(n2)
