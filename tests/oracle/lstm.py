"""Plain-NumPy LSTM, float64: forward over the steps and backprop through time.

x is (T, F); W (4H, F), U (4H, H), b (4H,), gates stacked i, f, g, o.
"""

from __future__ import annotations

import numpy as np

from .dense import project_through


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def forward(x, W, U, b):
    """(h (T, H), cache) with cache = per-step gates (i, f, g, o), cells and previous cells."""
    T, H = x.shape[0], W.shape[0] // 4
    h, c = np.zeros(H), np.zeros(H)
    hs, cache = np.zeros((T, H)), []
    for t in range(T):
        z = W @ x[t] + U @ h + b
        i, f, g, o = _sigmoid(z[:H]), _sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), \
            _sigmoid(z[3 * H:])
        c_prev = c
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        hs[t] = h
        cache.append((i, f, g, o, c, c_prev))
    return hs, cache


def backward(x, hs, cache, W, U, up):
    """Gradients of sum(up * h) (up is (T, H)): (dx, dW, dU, db)."""
    T, H = hs.shape
    dx, dW, dU, db = np.zeros_like(x, float), np.zeros_like(W, float), np.zeros_like(U, float), \
        np.zeros(4 * H)
    dh, dc = np.zeros(H), np.zeros(H)
    for t in range(T - 1, -1, -1):
        i, f, g, o, c, c_prev = cache[t]
        dh = dh + up[t]
        tc = np.tanh(c)
        dc = dc + dh * o * (1 - tc ** 2)
        dz = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                             dc * i * (1 - g ** 2), dh * tc * o * (1 - o)])
        dx[t] = W.T @ dz
        dW += np.outer(dz, x[t])
        if t > 0:
            dU += np.outer(dz, hs[t - 1])
        db += dz
        dh = U.T @ dz
        dc = dc * f
    return dx, dW, dU, db


def project_target(W, t_out, T, lo, hi):
    """Heuristic target of every input step through the input weights of the four gates,
    summed: W_i + W_f + W_g + W_o (H, F), then as for Dense.

    t_out is (T, H) (every state's target) or (H,) (the last state's, used for every step);
    NaN marks a missing target. Returns (t_in (T, F), den (T, F)).
    """
    H = W.shape[0] // 4
    W_sum = W[:H] + W[H:2 * H] + W[2 * H:3 * H] + W[3 * H:]
    tau = np.broadcast_to(t_out, (T, H))
    steps = [project_through(W_sum, tau[t], lo, hi) for t in range(T)]
    return np.array([s[0] for s in steps]), np.array([s[1] for s in steps])
