"""LabelMap: a classifier's own class labels (int, str or bool) and the output unit of each.

A network with K outputs holds at most K classes. An int label in [0, K) keeps its own unit
(so index labels behave as they always did); any other label (a str, a bool, an int outside
[0, K)) takes the lowest free unit when it first appears. Only the classes seen so far are
predicted. Changes are transactional: ``plan`` finds units for a batch of labels without
changing anything, ``commit`` records them once the whole batch was accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

Label = int | str | bool


def _key(y: Any) -> tuple[int, Label]:
    """(type tag, value): True and 1 are different classes, as are "1" and 1."""
    t = type(y)
    if t is bool or t is np.bool_:
        return 0, bool(y)
    if t is int or isinstance(y, np.integer):
        return 1, int(y)
    if t is str or t is np.str_:
        return 2, str(y)
    raise TypeError(f"a class label must be an int, str or bool, found {t.__name__} {y!r}; "
                    "convert it (e.g. str(y)) before learning")


class LabelMap:
    """The classes a classifier has seen, in the order of its output units.

    Parameters
    ----------
    capacity : int
        Output units (the most classes the network can hold).

    Examples
    --------
    >>> labels = LabelMap(3)
    >>> labels.commit(labels.plan(["spam", "ham", 1]))
    >>> labels.classes  # 1 would keep unit 1, but "ham" took it first
    ['spam', 'ham', 1]
    >>> labels.index(1), labels.label(0)
    (2, 'spam')
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self._unit: dict[tuple[int, Label], int] = {}
        self._labels: list[Label | None] = [None] * self.capacity
        self.seen = np.zeros(self.capacity, dtype=np.bool_)  # units holding a class
        self._held: list[int] = []  # the same units, sorted (kept by commit)
        self._held_units = np.zeros(0, dtype=np.int64)

    # --- lookups -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._unit)

    @property
    def classes(self) -> list[Label]:
        """The classes seen so far, by output unit."""
        return [y for y in self._labels if y is not None]

    def label(self, unit: int) -> Label | None:
        """The class held by output ``unit``, or None if it holds none yet."""
        return self._labels[unit]

    def index(self, y: Any) -> int:
        """The output unit of a class seen before; ``KeyError`` otherwise."""
        return self._unit[_key(y)]

    def unit_of(self, y: Any) -> int:
        """The output unit of a class seen before, or -1 (``TypeError`` for a bad label)."""
        return self._unit.get(_key(y), -1)

    def units(self) -> np.ndarray:
        """Units that hold a class (int64), in unit order."""
        return self._held_units

    # --- changes -----------------------------------------------------------------------------
    def plan(self, ys: Iterable[Any]) -> tuple[np.ndarray, list[tuple[tuple[int, Label], int]]]:
        """Units for the labels ``ys`` (int64 array) and the new classes they would add.

        Nothing changes here; pass the second item to ``commit``. Raises ``TypeError`` for a
        label of another type and ``ValueError`` when the new classes would overflow capacity.
        """
        unit = self._unit
        ys = list(ys)
        out = np.empty(len(ys), dtype=np.int64)
        new: dict[tuple[int, Label], int] = {}
        taken: set[int] | None = None
        for i, y in enumerate(ys):
            k = _key(y)
            u = unit.get(k)
            if u is None:
                u = new.get(k)
            if u is None:
                if taken is None:
                    taken = set(unit.values())
                u = self._free_unit(k, taken)
                if u < 0:
                    held = self.classes + [n[1] for n in new]
                    raise ValueError(
                        f"label {y!r} would be class {len(held) + 1}, but the network has "
                        f"{self.capacity} outputs and holds {held}; nothing was learned. Build "
                        "the network with more outputs")
                new[k] = u
                taken.add(u)
            out[i] = u
        return out, list(new.items())

    def plan_many(self, Y: Any, n: int
                  ) -> tuple[np.ndarray, list[tuple[tuple[int, Label], int]]]:
        """``plan`` for a batch of ``n`` labels (an array or a sequence), checked for length.
        Int arrays whose labels all keep their own unit take a vectorised path."""
        if isinstance(Y, list | tuple):  # np.asarray would turn ["a", 1] into strings
            if len(Y) != n:
                raise ValueError(f"Y must hold {n} labels to match X, found {len(Y)}")
            return self.plan(Y)
        arr = np.asarray(Y)
        if arr.shape != (n,):
            raise ValueError(f"Y must have shape ({n},) to match X, found {arr.shape}")
        if arr.dtype.kind in "iu" and n and all(k[0] == 1 for k in self._unit):
            lo, hi = arr.min(), arr.max()
            if lo >= 0 and hi < self.capacity:
                units = np.array(arr, dtype=np.int64)  # writable: one compiled signature
                fresh = np.flatnonzero((np.bincount(units, minlength=self.capacity) > 0)
                                       & ~self.seen)
                if all(u == k[1] for k, u in self._unit.items()):  # ints at their own units
                    return units, [((1, int(u)), int(u)) for u in fresh]
        if arr.dtype.kind == "f":
            raise TypeError(f"class labels must be int, str or bool, found dtype {arr.dtype}; "
                            "convert them (e.g. Y.astype(int)) before learning")
        return self.plan(arr.tolist())

    def best(self, scores: np.ndarray) -> Label | None:
        """The class whose unit scores highest in ``scores`` (capacity,), among the classes
        seen; None before the first."""
        held = self._held
        if len(held) > 16:  # NumPy pays off on many classes; a loop is faster on a few
            return self._labels[int(held[int(scores[self._held_units].argmax())])]
        if not held:
            return None
        best = held[0]
        top = scores[best]
        for u in held:
            if scores[u] > top:
                best, top = u, scores[u]
        return self._labels[best]

    def proba(self, p: np.ndarray) -> dict[Label | None, float]:
        """``{class: probability}`` over the classes seen, from unit probabilities ``p``
        (renormalised over those units; empty before the first class).

        Examples
        --------
        >>> labels = LabelMap(3)
        >>> labels.commit(labels.plan(["a"]))
        >>> labels.proba(np.array([0.2, 0.5, 0.3])), labels.best(np.array([0.2, 0.5, 0.3]))
        ({'a': 1.0}, 'a')
        """
        units = self.units()
        q = p[units].astype(np.float64)  # in float64, so that they sum to 1 to ~1e-16
        q /= q.sum()
        return {self._labels[u]: float(v) for u, v in zip(units.tolist(), q, strict=True)}

    def decode(self, out: np.ndarray) -> np.ndarray:
        """The predicted label of every row of unit scores ``out`` (n, capacity), among the
        classes seen: int64 if they are all ints, else object (None before any class)."""
        units = self.units()
        if not len(units):
            return np.full(out.shape[0], None, dtype=object)
        best = units[out[:, units].argmax(axis=1)]
        if all(k[0] == 1 for k in self._unit):
            return np.array([self._labels[u] for u in range(self.capacity)], dtype=object
                            )[best].astype(np.int64)
        return np.array(self._labels, dtype=object)[best]

    def _free_unit(self, k: tuple[int, Label], taken: set[int]) -> int:
        if k[0] == 1 and 0 <= k[1] < self.capacity and k[1] not in taken:  # type: ignore[operator]
            return int(k[1])
        for u in range(self.capacity):
            if u not in taken:
                return u
        return -1

    def commit(self, plan: tuple[np.ndarray, Sequence[tuple[tuple[int, Label], int]]]) -> None:
        """Record the new classes of a ``plan`` whose batch was accepted."""
        for k, u in plan[1]:
            self._unit[k] = u
            self._labels[u] = k[1]
            self.seen[u] = True
        if plan[1]:
            self._held_units = np.flatnonzero(self.seen)
            self._held = self._held_units.tolist()

    # --- files -------------------------------------------------------------------------------
    def to_list(self) -> list[Label | None]:
        """JSON form: the label of every unit, None where free."""
        return list(self._labels)

    @classmethod
    def from_list(cls, labels: Any, capacity: int) -> LabelMap:
        """Rebuild from ``to_list``; ``ValueError`` if it is not a valid map for ``capacity``.

        Examples
        --------
        >>> LabelMap.from_list(["a", None, 7], 3).classes
        ['a', 7]
        """
        if not isinstance(labels, list) or len(labels) != capacity:
            raise ValueError(f"classes must be a list of {capacity} labels or nulls")
        out = cls(capacity)
        for u, y in enumerate(labels):
            if y is None:
                continue
            k = _key(y)
            if k in out._unit:
                raise ValueError(f"class {y!r} appears twice")
            out.commit((np.empty(0, np.int64), [(k, u)]))
        return out
