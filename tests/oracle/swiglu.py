"""Plain-NumPy SwiGLU, float64, per row: forward and gradients."""

from __future__ import annotations

import numpy as np


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
