"""Compile ahead of time, visibly: a status line while Numba compiles, and ``compile_kinds``.

The first use of a network compiles its kinds' kernels (or loads them from Numba's on-disk
cache, see docs/deployment.md "Compile cache"). ``compile_progress`` shows that wait instead of
hiding it: it listens to Numba's compile events and prints, on stderr, how many functions are
done, which one is compiling, and the time so far.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import numpy as np
from numba.core import event

from tweenstream.models.registry import kind_named


class _Status(event.Listener):
    """Counts compile events and redraws one status line."""

    def __init__(self, out: TextIO, label: str) -> None:
        self.out, self.label = out, label
        self.started = time.perf_counter()
        self.done = 0

    def on_start(self, ev: Any) -> None:
        fn = ev.data["dispatcher"].py_func
        if not fn.__module__.startswith("numba"):  # name ours, not Numba's own helpers
            self._draw(f"compiling {fn.__name__.split('__')[0]}")

    def on_end(self, ev: Any) -> None:
        self.done += 1

    def _draw(self, what: str) -> None:
        spent = time.perf_counter() - self.started
        line = f"[{self.label}] {self.done} compiled, {what} ({spent:.0f} s)"
        self.out.write("\r" + line[:100].ljust(100))
        self.out.flush()

    def finish(self) -> None:
        spent = time.perf_counter() - self.started
        what = (f"{self.done} functions compiled in {spent:.1f} s" if self.done
                else f"loaded from the compile cache in {spent:.2f} s")
        self.out.write("\r" + f"[{self.label}] {what}".ljust(100) + "\n")
        self.out.flush()


@contextmanager
def compile_progress(enabled: bool = True, label: str = "tweenstream",
                     out: TextIO | None = None) -> Iterator[None]:
    """Show Numba compilation inside the block as a status line on ``out`` (stderr).

    Examples
    --------
    >>> import io
    >>> buf = io.StringIO()
    >>> with compile_progress(label="nothing", out=buf):
    ...     pass
    >>> "loaded from the compile cache" in buf.getvalue()
    True
    """
    if not enabled:
        yield
        return
    status = _Status(out or sys.stderr, label)
    with event.install_listener("numba:compile", status):
        yield
    status.finish()


def compile_kinds(kinds: Iterable[str], heuristic: bool = False, progress: bool = True,
                  refine: bool = False) -> float:
    """Compile (or load from the cache) the engine of a set of layer kinds; returns seconds.

    Fills Numba's cache, so that a later process whose network uses exactly these kinds starts
    without compiling. ``heuristic`` includes the tween-heuristic sweep; ``refine`` also the
    minibatch kernel of ``refine()``. Kind names are those of the registry (``kinds()``); a
    Residual compiles to ``residual_begin`` and ``residual_end``.

    Examples
    --------
    >>> compile_kinds(["dense"], progress=False) >= 0.0
    True
    """
    from tweenstream.runtime import layout as lay
    from tweenstream.runtime.engine import engine_of

    names = list(kinds)
    for name in names:
        if kind_named(name).kernels is None:
            raise ValueError(f"layer kind {name!r} never becomes a plan row; name the kinds it "
                             "compiles to (a Residual is residual_begin and residual_end)")
    if not names:
        raise ValueError("name at least one layer kind")
    engine = engine_of(names, heuristic)
    started = time.perf_counter()
    # zero samples: the entry points compile for the argument types every Learner passes
    table = np.zeros((1, lay.NCOL), np.int64)
    ltab = np.zeros((1, lay.NLCOL), np.float64)
    pbuf, work = np.zeros((lay.NPROW, 1), np.float32), np.zeros((lay.NWROW, 1), np.float32)
    diag = np.zeros((lay.NDROW, 1), np.float64)
    cfg, icfg = np.zeros(lay.NFCFG, np.float64), np.zeros(lay.NICFG, np.int64)
    fst, ist = np.zeros(lay.NFST, np.float64), np.zeros(lay.NIST, np.int64)
    X, Yc, Yr = np.zeros((0, 1), np.float32), np.zeros(0, np.int64), np.zeros((1, 1), np.float32)
    with compile_progress(enabled=progress, label=", ".join(engine.kinds)):
        engine.learn_many(table, ltab, pbuf, work, diag, cfg, icfg, fst, ist, X, Yc, Yr, True)
        engine.predict_many(table, pbuf, work, lay.T_CLASSIFICATION, X, np.zeros((0, 1),
                                                                                   np.float32))
        if refine:
            engine.accumulate_gradients(table, ltab, pbuf, work, diag, cfg, icfg, fst, X, Yc,
                                        Yr, np.zeros(0, np.int64))
    return time.perf_counter() - started


def cache_location() -> str:
    """Where Numba keeps the compiled kernels: ``NUMBA_CACHE_DIR`` if set, else beside the
    package sources (``__pycache__``) when writable, else a per-user cache folder.

    Examples
    --------
    >>> isinstance(cache_location(), str)
    True
    """
    from tweenstream.runtime.engine import engine_of

    cache = engine_of(["dense"]).learn_many._cache
    return str(cache.cache_path)
