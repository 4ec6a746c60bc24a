"""Compiled Dense kernels: forward, backward signal, heuristic target projection, update.

Shapes (one sample): x (n_in,) at the input slot of the ``work`` rows, W (n_out, n_in) row-major
and b (n_out,) in ``pbuf[P_PARAM]`` at the offsets the row stores under "W" and "b", z and a
(n_out,) at the output slot.
Each kernel takes the layer's plan row and the shared buffers, trusts them, and writes in place.
"""

import numpy as np

from tweenstream.models.dense import DENSE
from tweenstream.runtime.activations import activate, times_derivative
from tweenstream.runtime.kernels import Kernels
from tweenstream.runtime.layout import (
    C_ACT,
    C_IN,
    C_NIN,
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
from tweenstream.runtime.numba_config import kernel
from tweenstream.runtime.targets import project_target
from tweenstream.runtime.unmanaged import matrix_f32
from tweenstream.runtime.update import update_outer, update_vec

# where the plan put this layer's weights and bias
_W, _B = dim(DENSE, "W"), dim(DENSE, "b")


@kernel
def dense_forward(row, pbuf, work):
    """z = W x + b and a = f(z); writes ``work[W_PRE]`` and ``work[W_ACT]`` at the output slot."""
    nin, nout, xi, oo = row[C_NIN], row[C_NOUT], row[C_IN], row[C_OUT]
    w0, b0 = row[_W], row[_B]
    code = row[C_ACT]
    x = work[W_ACT, xi:xi + nin]
    a = work[W_ACT, oo:oo + nout]
    z = work[W_PRE, oo:oo + nout]
    W = matrix_f32(pbuf[P_PARAM, w0:w0 + nin * nout], nout, nin)
    b = pbuf[P_PARAM, b0:b0 + nout]
    for o in range(nout):
        s = np.float32(0.0)
        for j in range(nin):
            s += W[o, j] * x[j]
        z[o] = s + b[o]
    activate(z, a, code)


@kernel
def dense_signal(row, pbuf, work, need_input):
    """Chain rule through the layer: dz = g * f'(z) into ``W_DZ``; g_in = W^T dz into ``W_DELTA``.

    ``g`` is -dloss/da at the output slot; g_in is written only when ``need_input``.
    """
    nin, nout, xi, oo = row[C_NIN], row[C_NOUT], row[C_IN], row[C_OUT]
    w0 = row[_W]
    code = row[C_ACT]
    g = work[W_DELTA, oo:oo + nout]
    dz = work[W_DZ, oo:oo + nout]
    a = work[W_ACT, oo:oo + nout]
    z = work[W_PRE, oo:oo + nout]
    times_derivative(g, z, a, dz, code)
    if need_input:
        gin = work[W_DELTA, xi:xi + nin]
        W = matrix_f32(pbuf[P_PARAM, w0:w0 + nin * nout], nout, nin)
        gin[:] = np.float32(0.0)
        for o in range(nout):
            d = dz[o]
            for j in range(nin):
                gin[j] += W[o, j] * d


@kernel
def dense_project_target(row, pbuf, work, lo, hi):
    """Heuristic target of the layer input: t_in[j] = sum_o W[o,j] t[o] / sum_o |W[o,j]|.

    Output units without a target (NaN) do not vote. Where the denominator is <= 0.01 the
    input keeps its own activation, marked NaN here and resolved once the forward pass has it.
    Writes ``work[W_TGT]`` at the input slot, using ``work[W_DZ]`` there as scratch.
    """
    nin, nout, xi, oo = row[C_NIN], row[C_NOUT], row[C_IN], row[C_OUT]
    w0 = row[_W]
    t = work[W_TGT, oo:oo + nout]
    num = work[W_TGT, xi:xi + nin]
    den = work[W_DZ, xi:xi + nin]
    W = matrix_f32(pbuf[P_PARAM, w0:w0 + nin * nout], nout, nin)
    project_target(W, t, num, den, lo, hi)


@kernel
def dense_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """Update W and b from the local error e = ``work[W_DZ]`` at the output slot.

    dW = coef_w * outer(e, x) and db = coef_b * e, through the shared rule of ``update.py``.
    Returns the new sum of W² and b² (0 when accumulating for a batch).
    """
    nin, nout, xi, oo = row[C_NIN], row[C_NOUT], row[C_IN], row[C_OUT]
    w0, b0 = row[_W], row[_B]
    x = work[W_ACT, xi:xi + nin]
    e = work[W_DZ, oo:oo + nout]
    n2 = update_outer(pbuf, w0, nout, nin, e, x, coef_w, lim, va, vb, vc, accumulate)
    n2 += update_vec(pbuf, b0, nout, e, coef_b, lim, va, vb, vc, accumulate)
    return np.float64(n2)


DENSE_KERNELS = Kernels(dense_forward, dense_signal, dense_update, dense_project_target)


# --- batched prediction ---------------------------------------------------------------------
BLOCK = 64  # rows per block of dense_predict_many: its two buffers hold BLOCK x widest layer


@kernel
def dense_block(row, pbuf, src, dst, nb):
    """One Dense layer on ``nb`` rows at once: dst[r] = f(W src[r] + b) for r < nb.

    ``src`` and ``dst`` are flat float32 buffers holding the rows back to back ((nb, n_in) and
    (nb, n_out), C order), with room for ``nb`` rounded up to a multiple of 4. Rows go four at a
    time through each weight row, so W is read once per four rows (the per-row forward reads it
    once per row), and the activation runs once over the whole block. A last group of fewer
    than four rows is padded with whatever the buffer holds (its results are never read), so
    every row takes the same instructions: a row's output does not depend on its place in the
    batch, bit for bit.
    """
    nin, nout, code = row[C_NIN], row[C_NOUT], row[C_ACT]
    w0, b0 = row[_W], row[_B]
    W = matrix_f32(pbuf[P_PARAM, w0:w0 + nin * nout], nout, nin)
    b = pbuf[P_PARAM, b0:b0 + nout]
    padded = (nb + 3) // 4 * 4
    X = matrix_f32(src, padded, nin)
    Z = matrix_f32(dst, padded, nout)
    r = 0
    while r < padded:
        x0, x1, x2, x3 = X[r], X[r + 1], X[r + 2], X[r + 3]
        for o in range(nout):
            w = W[o]
            s0 = s1 = s2 = s3 = np.float32(0.0)
            for j in range(nin):
                s0 += w[j] * x0[j]
                s1 += w[j] * x1[j]
                s2 += w[j] * x2[j]
                s3 += w[j] * x3[j]
            Z[r, o], Z[r + 1, o] = s0 + b[o], s1 + b[o]
            Z[r + 2, o], Z[r + 3, o] = s2 + b[o], s3 + b[o]
        r += 4
    z = dst[:nb * nout]
    activate(z, z, code)
