"""Validation of what users hand a Learner: feature vectors, dicts, labels and targets.

Every error names what was expected, what was found, and the fix. Nothing here touches a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_NUMBER = (int, float, np.number)


def _real_dtype(arr: np.ndarray, what: str) -> None:
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{what} must hold real numbers, found dtype {arr.dtype}; "
                        "convert it with np.asarray(x, dtype=np.float32)")


class FeatureMap:
    """Turns one sample (a 1-D array or a dict) into a float32 vector of fixed length.

    A dict's key order is fixed by the first dict seen; later dicts must carry exactly those keys.

    Examples
    --------
    >>> fm = FeatureMap(2)
    >>> fm.vector({"a": 1.0, "b": 2.0})
    array([1., 2.], dtype=float32)
    >>> fm.vector({"b": 3.0, "a": 4.0})
    array([4., 3.], dtype=float32)
    """

    def __init__(self, n_inputs: int, features: Sequence[str] | None = None) -> None:
        self.n_inputs = n_inputs
        self.features: tuple[str, ...] | None = tuple(features) if features else None
        self._buf = np.zeros(n_inputs, dtype=np.float32)

    def vector(self, x: Any) -> np.ndarray:
        """A contiguous float32 vector for one sample (a view or an internal buffer)."""
        if type(x) is np.ndarray and x.dtype == np.float32 and x.shape == (self.n_inputs,):
            return x if x.flags.c_contiguous and x.flags.writeable else _writable(x)
        if isinstance(x, Mapping):
            return self._from_dict(x)
        if isinstance(x, (str, bytes)) or not isinstance(x, (np.ndarray, Sequence)):
            raise TypeError(f"x must be a 1-D array of {self.n_inputs} floats or a dict of "
                            f"features, found {type(x).__name__}")
        arr = np.asarray(x)
        _real_dtype(arr, "x")
        if arr.ndim != 1 or arr.shape[0] != self.n_inputs:
            raise ValueError(f"x must have shape ({self.n_inputs},), found {arr.shape}; "
                             "pass one sample as a flat vector (use learn_many for a batch)")
        return _writable(arr)

    def _from_dict(self, x: Mapping[Any, Any]) -> np.ndarray:
        names = self.features
        if names is None:
            if len(x) != self.n_inputs:
                raise ValueError(f"the network takes {self.n_inputs} inputs but the first dict "
                                 f"has {len(x)} features; pass exactly {self.n_inputs}")
            if not all(isinstance(k, str) for k in x):
                raise TypeError("feature names must be strings; found "
                                f"{[k for k in x if not isinstance(k, str)][:3]}")
            names = tuple(x)
        elif len(x) != len(names) or any(k not in x for k in names):
            missing = [k for k in names if k not in x]
            extra = [k for k in x if k not in names]
            raise ValueError(f"features must be exactly those of the first sample {list(names)}; "
                             f"missing {missing}, unexpected {extra}")
        buf = self._buf
        for j, name in enumerate(names):
            value = x[name]
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, _NUMBER):
                raise TypeError(f"feature {name!r} must be a real number, found "
                                f"{type(value).__name__}; convert it before learning")
            try:
                with np.errstate(over="ignore"):  # beyond float32: inf, refused later
                    buf[j] = value
            except OverflowError:
                raise ValueError(f"feature {name!r} = {value} is beyond float32's range "
                                 "(about 3.4e38)") from None
        self.features = names  # fixed only once a whole first dict was valid
        return buf

    def matrix(self, X: Any) -> np.ndarray:
        """A contiguous float32 (n, n_inputs) matrix for a batch (array or sequence of dicts)."""
        if isinstance(X, Sequence) and len(X) > 0 and isinstance(X[0], Mapping):
            return np.stack([self._from_dict(row).copy() for row in X])
        if isinstance(X, (str, bytes)) or not isinstance(X, (np.ndarray, Sequence)):
            raise TypeError(f"X must be a 2-D array (n, {self.n_inputs}) or a list of dicts, "
                            f"found {type(X).__name__}")
        arr = np.asarray(X)
        _real_dtype(arr, "X")
        if arr.ndim != 2 or arr.shape[1] != self.n_inputs:
            raise ValueError(f"X must have shape (n, {self.n_inputs}), found {arr.shape}; "
                             "one row per sample")
        return _writable(arr)


def _writable(arr: np.ndarray) -> np.ndarray:
    """C-contiguous, writable float32 (a read-only array would compile a second kernel)."""
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused with the NaNs
        out = np.ascontiguousarray(arr, dtype=np.float32)
    return out if out.flags.writeable else out.copy()


def class_label(y: Any, n_classes: int) -> int:
    """Validate one class label: an int in [0, n_classes).

    Examples
    --------
    >>> class_label(2, 4)
    2
    """
    if isinstance(y, (bool, np.bool_)) or not isinstance(y, (int, np.integer)):
        raise TypeError(f"y must be an int class label in [0, {n_classes}), found "
                        f"{type(y).__name__}; map labels to 0..{n_classes - 1}")
    if not 0 <= y < n_classes:
        raise ValueError(f"y must be a class label in [0, {n_classes}), found {y}")
    return int(y)


def class_labels(Y: Any, n: int, n_classes: int) -> np.ndarray:
    """Validate a batch of labels; returns contiguous int64 (n,). Range is checked later."""
    arr = np.asarray(Y)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"Y must hold int class labels, found dtype {arr.dtype}; "
                        f"map labels to 0..{n_classes - 1}")
    if arr.shape != (n,):
        raise ValueError(f"Y must have shape ({n},) to match X, found {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=np.int64)
    return out if out.flags.writeable else out.copy()


def targets(Y: Any, n: int, n_outputs: int) -> np.ndarray:
    """Validate regression targets; returns contiguous float32 (n, n_outputs)."""
    arr = np.asarray(Y)
    if arr.dtype.kind == "b":
        raise TypeError("y must hold real numbers, found booleans; convert them to floats")
    _real_dtype(arr, "y")
    if n_outputs == 1 and arr.shape == (n,):
        arr = arr.reshape(n, 1)
    if arr.shape != (n, n_outputs):
        raise ValueError(f"y must have shape ({n}, {n_outputs}), found {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    return out if out.flags.writeable else out.copy()


def target(y: Any, n_outputs: int) -> np.ndarray:
    """Validate one regression target: a number (one output) or a vector of ``n_outputs``.

    Examples
    --------
    >>> target(0.5, 1), target([1, 2], 2)
    (array([[0.5]], dtype=float32), array([[1., 2.]], dtype=float32))
    """
    arr = np.asarray(y)
    if arr.shape not in ((), (n_outputs,)) or (arr.shape == () and n_outputs != 1):
        want = "a number" if n_outputs == 1 else f"a vector of {n_outputs} numbers"
        raise ValueError(f"y must be {want}, found shape {arr.shape}")
    return targets(arr.reshape(1, -1), 1, n_outputs)


def check_ids(X: np.ndarray, vocab: int) -> None:
    """Token ids must be integers in [0, vocab): ``ValueError`` naming the first bad one.

    Examples
    --------
    >>> check_ids(np.array([[0, 3]], np.float32), 4)
    >>> check_ids(np.array([[0, 4]], np.float32), 4)
    Traceback (most recent call last):
    ...
    ValueError: token ids must be integers in [0, 4); found 4.0 at position (0, 1)
    """
    bad = ~((X >= 0) & (X < vocab) & (X == np.floor(X)))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"token ids must be integers in [0, {vocab}); found {X[where]} at "
                         f"position {where}")
