"""Validation of what users hand a Learner: feature vectors, dicts, labels and targets.

Every error names what was expected, what was found, and the fix. Nothing here touches a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _real_dtype(arr: np.ndarray, what: str) -> None:
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{what} must hold real numbers, found dtype {arr.dtype}; "
                        "convert it with np.asarray(x, dtype=np.float32)")


class FeatureMap:
    """Checks one sample (a 1-D array) or a batch (a 2-D array) against the input width and
    returns contiguous float32 (a view when it already is). Dict samples go through
    ``features.FeatureSlots`` instead.

    Examples
    --------
    >>> FeatureMap(2).vector([1, 2])
    array([1., 2.], dtype=float32)
    """

    def __init__(self, n_inputs: int) -> None:
        self.n_inputs = n_inputs

    def vector(self, x: Any, exact: bool = False) -> np.ndarray:
        """A contiguous float32 vector for one sample (a view or a copy); with ``exact``, the
        checked array as given (any real dtype: a scaling stage reads it in float64)."""
        if type(x) is np.ndarray and x.dtype == np.float32 and x.shape == (self.n_inputs,):
            return x if x.flags.c_contiguous and x.flags.writeable else _writable(x)
        if isinstance(x, (str, bytes)) or not isinstance(x, (np.ndarray, Sequence)):
            raise TypeError(f"x must be a 1-D array of {self.n_inputs} floats or a dict of "
                            f"features, found {type(x).__name__}")
        arr = np.asarray(x)
        _real_dtype(arr, "x")
        if arr.ndim != 1 or arr.shape[0] != self.n_inputs:
            raise ValueError(f"x must have shape ({self.n_inputs},), found {arr.shape}; "
                             "pass one sample as a flat vector (use learn_many for a batch)")
        return arr if exact else _writable(arr)

    def matrix(self, X: Any, exact: bool = False) -> np.ndarray:
        """A contiguous float32 (n, n_inputs) matrix for a batch (array or sequence of dicts)."""
        if isinstance(X, (str, bytes)) or not isinstance(X, (np.ndarray, Sequence)):
            raise TypeError(f"X must be a 2-D array (n, {self.n_inputs}) or a list of dicts, "
                            f"found {type(X).__name__}")
        arr = np.asarray(X)
        _real_dtype(arr, "X")
        if arr.ndim != 2 or arr.shape[1] != self.n_inputs:
            raise ValueError(f"X must have shape (n, {self.n_inputs}), found {arr.shape}; "
                             "one row per sample")
        return arr if exact else _writable(arr)


def _writable(arr: np.ndarray) -> np.ndarray:
    """C-contiguous, writable float32 (a read-only array would compile a second kernel)."""
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused with the NaNs
        out = np.ascontiguousarray(arr, dtype=np.float32)
    return out if out.flags.writeable else out.copy()


def targets(Y: Any, n: int, n_outputs: int, dtype: Any = np.float32) -> np.ndarray:
    """Validate regression targets; returns contiguous float32 (or ``dtype``) (n, n_outputs)."""
    arr = np.asarray(Y)
    if arr.dtype.kind == "b":
        raise TypeError("y must hold real numbers, found booleans; convert them to floats")
    _real_dtype(arr, "y")
    if n_outputs == 1 and arr.shape == (n,):
        arr = arr.reshape(n, 1)
    if arr.shape != (n, n_outputs):
        raise ValueError(f"y must have shape ({n}, {n_outputs}), found {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=dtype)
    return out if out.flags.writeable else out.copy()


def target(y: Any, n_outputs: int, dtype: Any = np.float32) -> np.ndarray:
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
    return targets(arr.reshape(1, -1), 1, n_outputs, dtype)


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
