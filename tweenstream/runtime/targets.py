"""Kind-independent tween helpers that work on a layer's output slot.

Targets t, gaps and link budgets (TWEENING.md, "Targets, gaps, link budgets"), and the local
error a layer with an elementwise activation descends. All act on one layer's output slot
[oo, oo + n) of the ``work`` rows; ``lo``/``hi`` clamp targets to the activation's range.
"""

import numpy as np

from tweenstream.runtime.activations import dact
from tweenstream.runtime.layout import C_ACT, C_NOUT, C_OUT, W_ACT, W_DELTA, W_DZ, W_PRE, W_TGT
from tweenstream.runtime.numba_config import kernel


@kernel
def gap_and_budget(a, a_off, t, t_off, n):
    """Gap = mean (a - t)² and link budget = (cos(a, t) + 1) / 2 (0.5 if either norm² < 1e-3).

    Compares a[a_off:a_off+n] with t[t_off:t_off+n].
    """
    sq = 0.0
    aa = 0.0
    tt = 0.0
    at = 0.0
    for j in range(n):
        x = np.float64(a[a_off + j])
        y = np.float64(t[t_off + j])
        sq += (x - y) * (x - y)
        aa += x * x
        tt += y * y
        at += x * y
    budget = 0.5
    if aa >= 1e-3 and tt >= 1e-3:
        budget = (at / np.sqrt(aa * tt) + 1.0) * 0.5
    return sq / n, budget


@kernel
def chain_targets(row, work, s, lo, hi):
    """Chain-rule targets t = clamp(a + s * g) into ``W_TGT``; returns (gap, budget)."""
    oo, n = row[C_OUT], row[C_NOUT]
    A = work[W_ACT]
    G = work[W_DELTA]
    T = work[W_TGT]
    for j in range(oo, oo + n):
        T[j] = min(max(A[j] + s * G[j], lo), hi)
    return gap_and_budget(A, oo, T, oo, n)


@kernel
def settle_targets(row, work):
    """Resolve heuristic targets marked NaN (keep the activation); returns (gap, budget)."""
    oo, n = row[C_OUT], row[C_NOUT]
    A = work[W_ACT]
    T = work[W_TGT]
    for j in range(oo, oo + n):
        if T[j] != T[j]:
            T[j] = A[j]
    return gap_and_budget(A, oo, T, oo, n)


@kernel
def local_error(row, work, use_derivative):
    """e = (t - a) * f'(z) (or without f') into ``W_DZ``: minus the gradient of the local gap."""
    oo, n, code = row[C_OUT], row[C_NOUT], row[C_ACT]
    A = work[W_ACT]
    Z = work[W_PRE]
    T = work[W_TGT]
    E = work[W_DZ]
    for j in range(oo, oo + n):
        e = T[j] - A[j]
        if use_derivative:
            e *= dact(Z[j], A[j], code)
        E[j] = e
