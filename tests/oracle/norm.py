"""Plain-NumPy LayerNorm / RMSNorm (and Flatten), float64, written from their definitions.

x is (R, d): R rows normalised over d features. ``shift`` is True for LayerNorm (subtract the
mean, add beta) and False for RMSNorm.
"""

from __future__ import annotations

import numpy as np

EPS = {True: 1e-5, False: 1e-6}


def forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray | None, shift: bool):
    """Returns (a, x_hat, inv_std)."""
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=1, keepdims=True) if shift else 0.0
    centred = x - mean
    inv = 1.0 / np.sqrt((centred ** 2).mean(axis=1, keepdims=True) + EPS[shift])
    x_hat = centred * inv
    a = gamma * x_hat + (beta if shift else 0.0)
    return a, x_hat, inv


def input_gradient(g: np.ndarray, x_hat: np.ndarray, inv: np.ndarray, gamma: np.ndarray,
                   shift: bool) -> np.ndarray:
    """d loss / d x for upstream g = d loss / d a, by the chain rule through the mean and std."""
    dh = g * gamma
    m1 = dh.mean(axis=1, keepdims=True) if shift else 0.0
    m2 = (dh * x_hat).mean(axis=1, keepdims=True)
    return inv * (dh - m1 - x_hat * m2)


def param_gradients(g: np.ndarray, x_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d loss / d gamma, d loss / d beta), summed over rows."""
    return (g * x_hat).sum(axis=0), g.sum(axis=0)
