"""Kind-independent tween helpers that work on a layer's output slot.

Targets t, gaps and link budgets (TWEENING.md, "Targets, gaps, link budgets"), and the local
error a layer with an elementwise activation descends. All act on one layer's output slot
[oo, oo + n) of the ``work`` rows; ``lo``/``hi`` clamp targets to the activation's range.
"""

import numpy as np

from tweenstream.runtime.activations import times_derivative
from tweenstream.runtime.layout import (
    C_ACT,
    C_IN,
    C_NIN,
    C_NOUT,
    C_OUT,
    W_ACT,
    W_DELTA,
    W_DZ,
    W_PRE,
    W_TGT,
)
from tweenstream.runtime.numba_config import inline, kernel


@kernel
def project_target(W, t, num, den, lo, hi):
    """The weight-normalised projection of an output target back to a layer input
    (TWEENING.md, heuristic mode): num[j] = sum_o W[o,j] t[o] / sum_o |W[o,j]|, clamped to
    [lo, hi]. Output units without a target (NaN) do not vote; where the denominator is <= 0.01
    num[j] is NaN (the input keeps its own activation). W (n_out, n_in); ``den`` is scratch."""
    num[:] = np.float32(0.0)
    den[:] = np.float32(0.0)
    for o in range(W.shape[0]):
        v = t[o]
        if v != v:
            continue
        for j in range(W.shape[1]):
            num[j] += W[o, j] * v
            den[j] += abs(W[o, j])
    for j in range(W.shape[1]):
        if den[j] <= np.float32(0.01):
            num[j] = np.float32(np.nan)
        else:
            num[j] = min(max(num[j] / den[j], lo), hi)


@inline
def gap_and_budget(a, t):
    """Gap = mean (a - t)² and link budget = (cos(a, t) + 1) / 2 (0.5 if either norm² < 1e-3).

    a, t (n,) float32 views; sums in float64.
    """
    sq = 0.0
    aa = 0.0
    tt = 0.0
    at = 0.0
    for j in range(a.shape[0]):
        x = np.float64(a[j])
        y = np.float64(t[j])
        sq += (x - y) * (x - y)
        aa += x * x
        tt += y * y
        at += x * y
    budget = 0.5
    if aa >= 1e-3 and tt >= 1e-3:
        budget = (at / np.sqrt(aa * tt) + 1.0) * 0.5
    return sq / a.shape[0], budget


@inline
def chain_targets(row, work, s, lo, hi, measure):
    """Chain-rule targets t = clamp(a + s * g) into ``W_TGT``; returns (gap, budget), or
    (0, 0.5) without computing them unless ``measure``."""
    oo, n = row[C_OUT], row[C_NOUT]
    a = work[W_ACT, oo:oo + n]
    g = work[W_DELTA, oo:oo + n]
    t = work[W_TGT, oo:oo + n]
    for j in range(n):
        t[j] = min(max(a[j] + s * g[j], lo), hi)
    if measure:
        return gap_and_budget(a, t)
    return 0.0, 0.5


@inline
def settle_targets(row, work):
    """Resolve heuristic targets marked NaN (keep the activation); returns (gap, budget)."""
    oo, n = row[C_OUT], row[C_NOUT]
    a = work[W_ACT, oo:oo + n]
    t = work[W_TGT, oo:oo + n]
    for j in range(n):
        if t[j] != t[j]:
            t[j] = a[j]
    return gap_and_budget(a, t)


@inline
def local_error(row, work, use_derivative):
    """e = (t - a) * f'(z) (or without f') into ``W_DZ``: minus the gradient of the local gap."""
    oo, n, code = row[C_OUT], row[C_NOUT], row[C_ACT]
    a = work[W_ACT, oo:oo + n]
    z = work[W_PRE, oo:oo + n]
    t = work[W_TGT, oo:oo + n]
    e = work[W_DZ, oo:oo + n]
    for j in range(n):
        e[j] = t[j] - a[j]
    if use_derivative:
        times_derivative(e, z, a, e, code)


@kernel
def pass_target(row, work, lo, hi):
    """Heuristic target of a shape-preserving layer's input: its output's target, clamped to
    the producing layer's range (a missing target stays missing)."""
    xi, oo, n = row[C_IN], row[C_OUT], row[C_NOUT]
    t = work[W_TGT, oo:oo + n]
    tin = work[W_TGT, xi:xi + n]
    for j in range(n):
        v = t[j]
        tin[j] = v if v != v else min(max(v, lo), hi)


@kernel
def keep_target(row, work):
    """No projection: every input unit keeps its own activation as its target (NaN marks)."""
    xi, n = row[C_IN], row[C_NIN]
    work[W_TGT, xi:xi + n] = np.float32(np.nan)
