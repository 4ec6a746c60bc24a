"""Compiled Embedding kernels.

Shapes: ids (T,) as float32 at the input slot; table E (V, D) at ``C_P``; output (T*D,).
Scratch: the gradient of E (V*D). Row dims: T, V, D.
"""

import numpy as np

from tweenstream.runtime.layout import (
    C_DIM,
    C_IN,
    C_OUT,
    C_P,
    C_S,
    P_PARAM,
    W_ACT,
    W_DELTA,
    W_DZ,
    W_PRE,
)
from tweenstream.runtime.numba_config import kernel
from tweenstream.runtime.update import update_vec


@kernel
def embedding_forward(row, pbuf, work):
    """a[t] = E[id_t]; an id that is not an integer in [0, V) gives NaN (the sample is refused)."""
    T, V, D = row[C_DIM], row[C_DIM + 1], row[C_DIM + 2]
    xi, oo, p = row[C_IN], row[C_OUT], row[C_P]
    E = pbuf[P_PARAM, p:p + V * D].reshape((V, D))
    for t in range(T):
        v = work[W_ACT, xi + t]
        out = work[W_ACT, oo + t * D:oo + (t + 1) * D]
        if v >= 0 and v < V and v == np.floor(v):
            out[:] = E[int(v)]
        else:
            out[:] = np.float32(np.nan)
    work[W_PRE, oo:oo + T * D] = work[W_ACT, oo:oo + T * D]


@kernel
def embedding_signal(row, pbuf, work, need_input):
    """dz = g. Ids have no gradient: an Embedding is always the first layer."""
    T, D = row[C_DIM], row[C_DIM + 2]
    oo = row[C_OUT]
    work[W_DZ, oo:oo + T * D] = work[W_DELTA, oo:oo + T * D]


@kernel
def embedding_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """dE[id_t] += e_t (repeated ids add up); the whole table goes through the shared rule, so
    momentum decays for rows not seen this sample, as with a dense gradient."""
    T, V, D = row[C_DIM], row[C_DIM + 1], row[C_DIM + 2]
    xi, oo, p, s0 = row[C_IN], row[C_OUT], row[C_P], row[C_S]
    G = work[W_ACT, s0:s0 + V * D]
    G[:] = np.float32(0.0)
    for t in range(T):
        i = int(work[W_ACT, xi + t])
        for k in range(D):
            G[i * D + k] += work[W_DZ, oo + t * D + k]
    return np.float64(update_vec(pbuf, p, V * D, G, coef_w, lim, va, vb, vc, accumulate))
