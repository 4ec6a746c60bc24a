"""Plain-NumPy SwiGLU, float64, per row: forward and gradients."""

from __future__ import annotations

import numpy as np

from .dense import project_rows_twice


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def forward(x, Wg, Wu, Wd, bg, bu, bd):
    """x (R, d) -> (y (R, o), cache)."""
    gate, up = x @ Wg.T + bg, x @ Wu.T + bu
    s = gate * _sigmoid(gate) * up
    return s @ Wd.T + bd, (gate, up, s)


def backward(x, cache, Wg, Wu, Wd, e):
    """Gradients of sum(e * y): (dx, dWg, dWu, dWd, dbg, dbu, dbd)."""
    gate, up, s = cache
    ds = e @ Wd
    sig = _sigmoid(gate)
    dg = ds * up * sig * (1 + gate * (1 - sig))
    du = ds * gate * sig
    return (dg @ Wg + du @ Wu, dg.T @ x, du.T @ x, e.T @ s, dg.sum(0), du.sum(0), e.sum(0))


def project_target(Wu, Wd, t_out, lo, hi):
    """Heuristic input target, per row: t_out (R, o) projected back through the down projection
    W_d to a target of s (unclamped; hidden units left without one do not vote), then through
    the up projection W_u, each step as for Dense. The gate W_g takes no part.

    Returns (t_in (R, d), den (R, d)), den being the last step's denominator.
    """
    return project_rows_twice(Wd, Wu, t_out, lo, hi)
