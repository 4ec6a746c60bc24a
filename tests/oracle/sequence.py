"""Plain-NumPy TimeDense and RepeatVector, float64.

TimeDense: x (T, d), W (units, d), b (units,); the same Dense at every step. RepeatVector:
v (d,) to (T, d).
"""

from __future__ import annotations

import numpy as np

from .dense import activation, activation_derivative, project_through


def time_dense_forward(x, W, b, act):
    """Pre-activations z (T, units) and outputs a = f(z)."""
    z = x @ W.T + b
    return z, activation(act, z)


def time_dense_backward(x, z, W, g, act):
    """Gradients of sum(g * a) (g (T, units)): (d/dx (T, d), d/dW, d/db), each step's
    contribution summed."""
    dz = g * activation_derivative(act, z)
    return dz @ W, dz.T @ x, dz.sum(axis=0)


def time_dense_project_target(W, t_out, lo, hi):
    """Heuristic target of every input step, each step projected through W as Dense's is;
    t_out (T, units). Returns (t_in (T, d), den (T, d))."""
    steps = [project_through(W, t_out[t], lo, hi) for t in range(t_out.shape[0])]
    return np.array([s[0] for s in steps]), np.array([s[1] for s in steps])


def repeat_forward(v, steps):
    """(steps, d): v at every step."""
    return np.tile(v, (steps, 1))


def repeat_backward(g):
    """Gradient of sum(g * repeat(v)) with respect to v: the sum of g (T, d) over the steps."""
    return g.sum(axis=0)


def repeat_project_target(t_out, lo, hi):
    """Heuristic target of the repeated vector: per unit, the mean of the steps' targets that
    are not NaN, clamped to [lo, hi]; NaN where no step has one. t_out (T, d). Returns (t_in,
    count of voting steps)."""
    has = ~np.isnan(t_out)
    count = has.sum(axis=0).astype(np.float64)
    total = np.where(has, t_out, 0.0).sum(axis=0)
    t_in = np.full(t_out.shape[1], np.nan)
    ok = count > 0
    t_in[ok] = np.clip(total[ok] / count[ok], lo, hi)
    return t_in, count
