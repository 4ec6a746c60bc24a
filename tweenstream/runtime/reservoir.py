"""The replay reservoir: a fixed-size, preallocated uniform sample of the stream seen so far.

Algorithm R (Vitter): the t-th sample (counting from 0) takes a slot if t < capacity, else it
replaces a random slot with probability capacity / (t + 1). With ``recency`` > 0 a sample also
replaces a random slot with that probability when Algorithm R would have skipped it, which
biases the reservoir toward recent samples (useful after drift). Arrays are allocated once;
``add_one`` (one sample, as ``learn_one``) makes no array; ``add_many`` makes a few temporary
arrays per call (O(batch), freed at once), never per sample. ``stamp`` records each slot's
sample index, so ``newest(n)`` returns the most recent rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Reservoir:
    """Keeps up to ``capacity`` (x, y) pairs from a stream.

    Examples
    --------
    >>> r = Reservoir(100, n_inputs=2, n_outputs=3, classification=True, seed=0)
    >>> r.add_many(np.ones((250, 2), np.float32), np.zeros(250, np.int64))
    >>> r.seen, len(r)
    (250, 100)
    """

    def __init__(self, capacity: int, n_inputs: int, n_outputs: int, classification: bool, *,
                 recency: float = 0.0, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"reservoir capacity must be >= 1, found {capacity}")
        if not 0.0 <= recency < 1.0:
            raise ValueError(f"reservoir recency must be in [0, 1), found {recency}")
        self.capacity = capacity
        self.recency = recency
        self.classification = classification
        self.X = np.zeros((capacity, n_inputs), np.float32)
        self.Y = (np.zeros(capacity, np.int64) if classification
                  else np.zeros((capacity, n_outputs), np.float32))
        self.stamp = np.full(capacity, -1, np.int64)
        self.seen = 0
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return min(self.seen, self.capacity)

    def add_one(self, x: np.ndarray, y: np.ndarray) -> None:
        """Offer one sample: ``x`` of n_inputs values, ``y`` a one-row array of labels/targets.

        The same random draws and the same result as ``add_many`` with that single row, without
        its per-call temporary arrays (``learn_one`` calls this once per sample).

        Examples
        --------
        >>> r = Reservoir(2, n_inputs=1, n_outputs=2, classification=True, seed=0)
        >>> for i in range(3):
        ...     r.add_one(np.full(1, i, np.float32), np.array([i % 2]))
        >>> r.seen, len(r)
        (3, 2)
        """
        t, cap = self.seen, self.capacity
        j = int(self._rng.integers(0, t + 1))
        slot, keep = (t, True) if t < cap else (j, j < cap)
        if self.recency > 0:  # drawn whether or not they are used, as add_many does
            u, k = self._rng.random(), int(self._rng.integers(0, cap))
            if not keep and u < self.recency:
                slot, keep = k, True
        if keep:
            self.X[slot] = x
            self.Y[slot:slot + 1] = y
            self.stamp[slot] = t
        self.seen = t + 1

    def add_many(self, X: np.ndarray, Y: np.ndarray) -> None:
        """Offer every row of (X, Y), in order, to the reservoir."""
        m = len(X)
        if m == 0:
            return
        t = self.seen + np.arange(m)
        j = self._rng.integers(0, t + 1)
        slot = np.where(t < self.capacity, t, j)
        keep = (t < self.capacity) | (j < self.capacity)
        if self.recency > 0:
            extra = ~keep & (self._rng.random(m) < self.recency)
            slot = np.where(extra, self._rng.integers(0, self.capacity, m), slot)
            keep |= extra
        rows = np.flatnonzero(keep)
        if len(rows):
            # later samples win when two land on one slot, as in sequential Algorithm R
            last = len(rows) - 1 - np.unique(slot[rows][::-1], return_index=True)[1]
            chosen = rows[last]
            self.X[slot[chosen]] = X[chosen]
            self.Y[slot[chosen]] = Y[chosen]
            self.stamp[slot[chosen]] = t[chosen]
        self.seen += m

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The filled part (views), in slot order."""
        n = len(self)
        return self.X[:n], self.Y[:n]

    def newest(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the ``n`` most recent rows, oldest first."""
        filled = len(self)
        order = np.argsort(self.stamp[:filled])[-n:]
        return self.X[order].copy(), self.Y[order].copy()

    def split(self, holdout: float, seed: int) -> tuple[tuple[np.ndarray, np.ndarray],
                                                        tuple[np.ndarray, np.ndarray]]:
        """A seeded (train, held-out) split of the filled part (copies)."""
        X, Y = self.data()
        order = np.random.default_rng(seed).permutation(len(X))
        cut = len(X) - max(1, round(holdout * len(X)))
        return (X[order[:cut]], Y[order[:cut]]), (X[order[cut:]], Y[order[cut:]])

    def arrays(self) -> dict[str, np.ndarray]:
        """State to save (with ``meta()``); ``restore`` inverts both."""
        return {"res_X": self.X, "res_Y": self.Y, "res_stamp": self.stamp}

    def meta(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "recency": self.recency, "seen": self.seen,
                "rng_state": self._rng.bit_generator.state}

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        for name, buf in self.arrays().items():
            buf[...] = arrays[name]
        self.seen = int(meta["seen"])
        self._rng.bit_generator.state = meta["rng_state"]
