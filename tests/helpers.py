"""Seeded data shared by several test modules."""

from __future__ import annotations

import numpy as np


def quadrant_data(n: int, seed: int, n_features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A clean 4-class task: the quadrant of (x0, x1)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, n_features)).astype(np.float32)
    y = (2 * (X[:, 0] > 0) + (X[:, 1] > 0)).astype(np.int64)
    return X, y
