"""Plain-NumPy losses and their gradients with respect to the output, float64: softmax
cross-entropy, ½ squared error, and the hybrid of squared error and per-step cosine loss.
tests/test_losses.py checks them against PyTorch's (tests/data/torch_losses.npz)."""

from __future__ import annotations

import numpy as np


def cross_entropy(z, c):
    """(-log softmax(z)_c, d/dz)."""
    m = z.max()
    p = np.exp(z - m)
    p /= p.sum()
    grad = p.copy()
    grad[c] -= 1.0
    return float(-np.log(p[c])), grad


def squared(a, y):
    """(½ Σ (a - y)², d/da)."""
    return 0.5 * float(((a - y) ** 2).sum()), a - y


def cosine_mix(a, y, w):
    """(1 - w) ½ Σ (a - y)² + w mean_t (1 - cos(a_t, y_t)) over the rows t of a and y
    (steps, d), and its gradient with respect to a. Norms are floored at 1e-8."""
    na = np.maximum(np.linalg.norm(a, axis=1), 1e-8)[:, None]
    ny = np.maximum(np.linalg.norm(y, axis=1), 1e-8)[:, None]
    cos = (a * y).sum(1, keepdims=True) / (na * ny)
    steps = a.shape[0]
    loss = (1 - w) * 0.5 * float(((a - y) ** 2).sum()) + w * float((1 - cos).mean())
    grad = (1 - w) * (a - y) - w * (y / (na * ny) - cos * a / na**2) / steps
    return loss, grad
