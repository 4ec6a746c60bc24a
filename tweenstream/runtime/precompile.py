"""A second process that compiles a kind set's backward kernels while the first compiles the
rest, on machines with more than one core.

Numba compiles in one thread per process. When a process first uses an engine of two or more
kinds whose entry point is not in the on-disk cache, ``start_helper`` starts ``python -m
tweenstream.runtime.precompile KIND ...``: it runs each kind's ``signal`` and ``update`` kernels
(and ``project`` for a tween-heuristic engine) once on an empty arena of the kind's example
network, with the argument types the engine uses, so that Numba compiles them and writes them
to the cache. The first process, reaching those kernels later, loads them instead of compiling
them; one it reaches first it compiles itself (Numba writes cache files atomically, so the two
never corrupt it). The helper is stopped when the first process exits. Set
``TWEENSTREAM_PARALLEL_COMPILE=0`` to keep to one process.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from typing import Any

import numpy as np

from tweenstream.models.registry import kind_named, kind_of

ENV = "TWEENSTREAM_PARALLEL_COMPILE"
_F32 = np.float32


def run_kernels(names: list[str], roles: tuple[str, ...] = ("signal", "update")) -> None:
    """Call the ``roles`` kernels of each kind once, on zeros, so that Numba compiles them.

    Examples
    --------
    >>> run_kernels(["flatten"], roles=("forward",))
    """
    from tweenstream.runtime.arena import Arena
    from tweenstream.runtime.plan import compile_plan

    for name in names:
        kind = kind_named(name)
        if kind.kernels is None or kind.example is None:
            continue
        plan = compile_plan(kind.example())
        arena = Arena(plan)
        rows = [i for i, (spec, _, _) in enumerate(plan.network.rows) if kind_of(spec) is kind]
        if not rows:
            continue
        row = plan.table[rows[0]]
        bundle = kind.part("kernels")
        for role in roles:
            fn = getattr(bundle, role)
            if fn is None:
                continue
            _call(fn, role, row, arena)


def _call(fn: Any, role: str, row: np.ndarray, arena: Any) -> None:
    pbuf, work = arena.pbuf, arena.work
    if role == "forward":
        fn(row, pbuf, work)
    elif role == "signal":
        fn(row, pbuf, work, True)
    elif role == "project":
        fn(row, pbuf, work, _F32(-1.0), _F32(1.0))
    else:
        fn(row, pbuf, work, _F32(0.0), _F32(0.0), _F32(np.inf), _F32(0.0), _F32(1.0), _F32(0.0),
           False)


def start_helper(names: tuple[str, ...], entry: Any,
                 heuristic: bool = False) -> subprocess.Popen[bytes] | None:
    """Start the helper for a kind set, unless ``entry`` (a cached dispatcher) is already in the
    cache, the set has one kind (nothing worth sharing out), the machine has one core, or
    ``TWEENSTREAM_PARALLEL_COMPILE=0``. Never raises: compiling in one process still works.

    Examples
    --------
    >>> from tweenstream.runtime.engine import engine_of
    >>> start_helper(("dense",), engine_of(["dense"]).learn_many) is None
    True
    """
    if os.environ.get(ENV, "1") == "0" or (os.cpu_count() or 1) < 2 or len(names) < 2:
        return None
    try:
        index = entry._cache._cache_file._index_path
        if os.path.exists(index):
            return None
        roles = ["--heuristic"] if heuristic else []
        helper = subprocess.Popen([sys.executable, "-m", "tweenstream.runtime.precompile",
                                   *roles, *names], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**os.environ, ENV: "0"})
    except Exception:
        return None
    atexit.register(_stop, helper)
    return helper


def _stop(helper: subprocess.Popen[bytes]) -> None:
    if helper.poll() is None:
        helper.terminate()
        helper.wait(timeout=30)


if __name__ == "__main__":
    _args = sys.argv[1:]
    _roles = ("signal", "update", "project") if "--heuristic" in _args else ("signal", "update")
    run_kernels([a for a in _args if a != "--heuristic"], _roles)
