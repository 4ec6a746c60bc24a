"""The one place that sets Numba options for every compiled kernel.

fastmath keeps IEEE NaN/Inf semantics on purpose (no ``nnan``/``ninf``): the explosion detector
relies on seeing non-finite values. ``TWEENSTREAM_BOUNDSCHECK=1`` turns bounds checks on for
debugging; it is off by default because it changes the compiled code and its cache entries.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from numba import njit

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
BOUNDSCHECK = os.environ.get("TWEENSTREAM_BOUNDSCHECK", "") == "1"
OPTIONS: dict[str, Any] = {
    "cache": True,
    "fastmath": FASTMATH,
    "error_model": "numpy",
    "nogil": True,
    "boundscheck": BOUNDSCHECK,
}


def kernel(fn: Callable[..., Any]) -> Any:
    """Compile ``fn`` with the project's Numba options (lazily, cached on disk)."""
    return njit(**OPTIONS)(fn)
