"""Plain-NumPy Embedding: lookup and the gradient of the table, float64."""

from __future__ import annotations

import numpy as np


def forward(ids: np.ndarray, E: np.ndarray) -> np.ndarray:
    """(T, D) rows of E."""
    return E[ids.astype(int)]


def table_gradient(ids: np.ndarray, g: np.ndarray, vocab: int) -> np.ndarray:
    """Gradient of sum(g * forward) with respect to E: each id's rows of g added up."""
    dE = np.zeros((vocab, g.shape[1]))
    np.add.at(dE, ids.astype(int), g)
    return dE
