"""The delayed-label store: inputs of ``predict`` messages waiting for their ``label``.

It is preallocated and fixed-size: ``capacity`` rows of the model's input, each with its id and
arrival time. A full store evicts its oldest row; a row older than ``max_age`` seconds is
evicted when it is looked at or when the store is swept. Evictions are counted.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np


class DelayedLabels:
    """Holds predicted inputs by id until their labels arrive.

    Examples
    --------
    >>> store = DelayedLabels(capacity=2, n_inputs=3, max_age=60.0)
    >>> store.put(["a", "b", "c"], np.ones((3, 3), np.float32))
    >>> store.evicted, sorted(store.ids())
    (1, ['b', 'c'])
    >>> X, found = store.take(["c", "zz"])
    >>> X.shape, found
    ((1, 3), [True, False])
    """

    def __init__(self, capacity: int, n_inputs: int, max_age: float) -> None:
        if capacity < 1 or max_age <= 0:
            raise ValueError("capacity must be >= 1 and max_age > 0")
        self.capacity = capacity
        self.max_age = max_age
        self._X = np.zeros((capacity, n_inputs), dtype=np.float32)
        self._slots: OrderedDict[Any, tuple[int, float]] = OrderedDict()  # id -> (row, time)
        self._free = list(range(capacity - 1, -1, -1))
        self._out = np.zeros((capacity, n_inputs), dtype=np.float32)
        self.evicted = 0
        self.expired = 0
        self.unknown = 0

    def __len__(self) -> int:
        return len(self._slots)

    def ids(self) -> list[Any]:
        return list(self._slots)

    def _drop(self, key: Any) -> None:
        row, _ = self._slots.pop(key)
        self._free.append(row)

    def sweep(self, now: float | None = None) -> None:
        """Evict rows older than ``max_age``."""
        now = time.monotonic() if now is None else now
        while self._slots:
            key, (_, born) = next(iter(self._slots.items()))
            if now - born <= self.max_age:
                break
            self._drop(key)
            self.expired += 1

    def put(self, ids: Sequence[Any], X: np.ndarray) -> None:
        """Store each row of X under its id (an id already stored is replaced)."""
        now = time.monotonic()
        self.sweep(now)
        for key, x in zip(ids, X, strict=True):
            if key in self._slots:
                self._drop(key)
            elif not self._free:
                self._drop(next(iter(self._slots)))
                self.evicted += 1
            row = self._free.pop()
            self._X[row] = x
            self._slots[key] = (row, now)

    def take(self, ids: Sequence[Any]) -> tuple[np.ndarray, list[bool]]:
        """Remove and return the stored rows of ``ids`` (in order) and which ids were found."""
        self.sweep()
        found = []
        n = 0
        for key in ids:
            slot = self._slots.get(key)
            if slot is None:
                self.unknown += 1
                found.append(False)
                continue
            self._out[n] = self._X[slot[0]]
            self._drop(key)
            found.append(True)
            n += 1
        return self._out[:n], found

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The waiting rows, oldest first, as arrays (for a checkpoint): inputs, ids, ages.

        Examples
        --------
        >>> store = DelayedLabels(capacity=4, n_inputs=2, max_age=60.0)
        >>> store.put(["a", 7], np.ones((2, 2), np.float32))
        >>> again = DelayedLabels(capacity=4, n_inputs=2, max_age=60.0)
        >>> again.restore(store.to_arrays()); again.ids()
        ['a', 7]
        """
        now = time.monotonic()
        keys = list(self._slots)
        rows = [self._slots[k][0] for k in keys]
        is_str = np.array([isinstance(k, str) for k in keys], dtype=bool)
        return {"label_X": self._X[rows].reshape(len(keys), self._X.shape[1]),
                "label_is_str": is_str,
                "label_int_ids": np.array(
                    [0 if s else k for k, s in zip(keys, is_str, strict=True)], dtype=np.int64),
                "label_str_ids": np.array(
                    [k if s else "" for k, s in zip(keys, is_str, strict=True)], dtype=str),
                "label_ages": np.array([now - self._slots[k][1] for k in keys],
                                       dtype=np.float64)}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Put back rows saved by ``to_arrays`` (with their ages); raises ``ValueError``."""
        try:
            X, is_str, ints, strs, ages = (arrays[k] for k in (
                "label_X", "label_is_str", "label_int_ids", "label_str_ids", "label_ages"))
        except KeyError as err:
            raise ValueError(f"label store lacks {err}") from None
        n = len(is_str)
        if X.shape != (n, self._X.shape[1]) or not len(ints) == len(strs) == len(ages) == n \
                or not np.isfinite(X).all() or not np.isfinite(ages).all():
            raise ValueError("label store arrays do not fit this model")
        now = time.monotonic()
        keep = slice(max(0, n - self.capacity), n)  # a smaller store keeps the newest rows
        for x, s, i, k, age in zip(X[keep], is_str[keep], ints[keep], strs[keep], ages[keep],
                                   strict=True):
            key: Any = str(k) if s else int(i)
            if key in self._slots or not self._free:
                raise ValueError("label store ids repeat")
            row = self._free.pop()
            self._X[row] = x
            self._slots[key] = (row, now - max(0.0, float(age)))

    def stats(self) -> dict[str, int]:
        return {"waiting": len(self), "capacity": self.capacity, "evicted": self.evicted,
                "expired": self.expired, "unknown": self.unknown}
