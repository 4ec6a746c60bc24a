"""Compiled Embedding kernels.

Shapes: ids (T,) as float32 at the input slot; table E (V, D) at the row's "E" offset; output
(T*D,). Scratch segment "grad": the gradient of E (V*D). Row dims: steps T, vocab V, dim D.
"""

import numpy as np

from tweenstream.models.embedding import EMBEDDING
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
from tweenstream.runtime.unmanaged import copy_into, matrix_f32
from tweenstream.runtime.update import update_vec

# row integers, by the names the kind declares
_STEPS = dim(EMBEDDING, "steps")
_VOCAB = dim(EMBEDDING, "vocab")
_DIM = dim(EMBEDDING, "dim")
_GRAD, _E = dim(EMBEDDING, "grad"), dim(EMBEDDING, "E")


@kernel
def embedding_forward(row, pbuf, work):
    """a[t] = E[id_t]; an id that is not an integer in [0, V) gives NaN (the sample is refused)."""
    T, V, D = row[_STEPS], row[_VOCAB], row[_DIM]
    xi, oo, p = row[C_IN], row[C_OUT], row[_E]
    E = matrix_f32(pbuf[P_PARAM, p:p + V * D], V, D)
    for t in range(T):
        v = work[W_ACT, xi + t]
        out = work[W_ACT, oo + t * D:oo + (t + 1) * D]
        if v >= 0 and v < V and v == np.floor(v):
            copy_into(out, E[int(v)])
        else:
            out[:] = np.float32(np.nan)
    copy_into(work[W_PRE, oo:oo + T * D], work[W_ACT, oo:oo + T * D])
@kernel
def embedding_signal(row, pbuf, work, need_input):
    """dz = g. Ids have no gradient: an Embedding is always the first layer."""
    T, D = row[_STEPS], row[_DIM]
    oo = row[C_OUT]
    copy_into(work[W_DZ, oo:oo + T * D], work[W_DELTA, oo:oo + T * D])
@kernel
def embedding_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """dE[id_t] += e_t (repeated ids add up); the whole table goes through the shared rule, so
    momentum decays for rows not seen this sample, as with a dense gradient."""
    T, V, D = row[_STEPS], row[_VOCAB], row[_DIM]
    xi, oo, p, g0 = row[C_IN], row[C_OUT], row[_E], row[_GRAD]
    G = work[W_ACT, g0:g0 + V * D]
    G[:] = np.float32(0.0)
    for t in range(T):
        i = int(work[W_ACT, xi + t])
        for k in range(D):
            G[i * D + k] += work[W_DZ, oo + t * D + k]
    return np.float64(update_vec(pbuf, p, V * D, G, coef_w, lim, va, vb, vc, accumulate))


EMBEDDING_KERNELS = Kernels(embedding_forward, embedding_signal, embedding_update)
