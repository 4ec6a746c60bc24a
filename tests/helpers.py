"""Seeded data shared by several test modules."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def quadrant_data(n: int, seed: int, n_features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A clean 4-class task: the quadrant of (x0, x1)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, n_features)).astype(np.float32)
    y = (2 * (X[:, 0] > 0) + (X[:, 1] > 0)).astype(np.int64)
    return X, y


def central_difference(f: Callable[[], float], arr: np.ndarray, eps: float = 1e-6
                       ) -> np.ndarray:
    """d f / d arr by central differences, perturbing ``arr`` in place one element at a time
    (and restoring it). Truncation error ~eps², round-off ~1e-16 / eps in float64."""
    out = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        keep = arr[idx]
        arr[idx] = keep + eps
        up = f()
        arr[idx] = keep - eps
        down = f()
        arr[idx] = keep
        out[idx] = (up - down) / (2.0 * eps)
    return out
