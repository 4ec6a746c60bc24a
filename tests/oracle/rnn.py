"""Plain-NumPy tanh RNN, float64: forward over the steps and backprop through time.

x is (T, F); W_x (H, F), W_h (H, H), b (H,).
"""

from __future__ import annotations

import numpy as np

from .dense import project_through


def forward(x, W_x, W_h, b):
    """All states h (T, H)."""
    T = x.shape[0]
    h = np.zeros((T, W_x.shape[0]))
    prev = np.zeros(W_x.shape[0])
    for t in range(T):
        prev = np.tanh(W_x @ x[t] + W_h @ prev + b)
        h[t] = prev
    return h


def backward(x, h, W_x, W_h, g):
    """Gradients of sum(g * h) (g is (T, H): the upstream signal on every state).

    Returns (d/dx (T, F), d/dW_x, d/dW_h, d/db).
    """
    T, H = h.shape
    dx = np.zeros_like(x, dtype=np.float64)
    dWx, dWh, db = np.zeros_like(W_x, float), np.zeros_like(W_h, float), np.zeros(H)
    dh = np.zeros(H)
    for t in range(T - 1, -1, -1):
        dh = dh + g[t]
        dz = dh * (1.0 - h[t] ** 2)
        dx[t] = W_x.T @ dz
        dWx += np.outer(dz, x[t])
        if t > 0:
            dWh += np.outer(dz, h[t - 1])
        db += dz
        dh = W_h.T @ dz
    return dx, dWx, dWh, db


def project_target(W_x, t_out, T, lo, hi):
    """Heuristic target of every input step, projected through the input weights W_x alone.

    t_out is (T, H) (every state's target) or (H,) (the last state's, used for every step);
    NaN marks a missing target. Returns (t_in (T, F), den (T, F)) as ``dense.project_through``.
    """
    tau = np.broadcast_to(t_out, (T, W_x.shape[0]))
    steps = [project_through(W_x, tau[t], lo, hi) for t in range(T)]
    return np.array([s[0] for s in steps]), np.array([s[1] for s in steps])
