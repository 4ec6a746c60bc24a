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


def inline(fn: Callable[..., Any]) -> Any:
    """Compile ``fn`` into each caller (Numba IR inlining), not as a unit of its own.

    For small helpers and for the glue between an entry point and the dispatchers: every
    compiled unit links, optimises and emits again the code of all it calls, so fewer units
    mean a shorter cold start. A helper called with literal arguments (``_buf(work, row, 3,
    ...)``) would otherwise compile once per literal value.
    """
    return njit(**OPTIONS, inline="always")(fn)


PER_KINDS: dict[str, tuple[Callable[..., Any], bool]] = {}


def per_kinds(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an entry point as compiled once per set of layer kinds (``engine.py``).

    The function calls the generated dispatchers, directly or through another marked function;
    the engine compiles a copy of it whose dispatchers know only the network's kinds. Returns
    ``fn`` plain (uncompiled).
    """
    PER_KINDS[fn.__name__] = (fn, False)
    return fn


def per_kinds_inline(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Like ``per_kinds``, for the glue between entry points and dispatchers: each copy is
    compiled into its callers (see ``inline``)."""
    PER_KINDS[fn.__name__] = (fn, True)
    return fn
