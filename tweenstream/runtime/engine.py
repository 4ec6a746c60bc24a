"""Engines: the interpreter compiled for one set of layer kinds.

A network's first ``learn_many`` used to compile every kind's kernels. An ``Engine`` is the
interpreter's entry points compiled for exactly the kinds a network uses (and, unless the
network learns in ``tween-heuristic`` mode, without the heuristic sweep): the generated
dispatchers (``dispatch.py``) get the kernels of those kinds bound, every other kind stays an
``absent_*`` kernel that raises, and the functions marked ``@per_kinds`` in ``interpreter.py``
are compiled as copies that call those dispatchers. Each copy has its own name (suffixed with
the kind set), so Numba's on-disk cache keeps one entry per kind set and a second process
loads it instead of compiling. Networks with the same kinds share one engine per process.
"""

from __future__ import annotations

import os
import threading
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tweenstream.models.registry import LayerKind, kind_named, kinds
from tweenstream.runtime import dispatch, interpreter
from tweenstream.runtime.kernels import bound_names
from tweenstream.runtime.numba_config import PER_KINDS, inline, kernel
from tweenstream.runtime.plan import Plan

_DISPATCHERS = ("forward_layer", "signal_layer", "update_layer", "project_layer")
_HEURISTIC_ONLY = "heuristic_sweep"


@inline  # compiled into step: a unit of its own would cost half a second of every cold start
def _absent_heuristic(table, ltab, pbuf, work, diag, cfg, icfg, fst, c, y, accumulate):
    """Stands in for the heuristic sweep in engines compiled without it."""
    if table.shape[0] >= 0:
        raise RuntimeError("this engine was compiled without tween-heuristic; use "
                           "engine_for(plan, heuristic=True)")
    return 0.0, 0.0, 0.0


@dataclass(frozen=True, eq=False)
class Engine:
    """The compiled entry points for one kind set (see ``interpreter.py`` for their arguments).

    Examples
    --------
    >>> from tweenstream.models import Dense, Network
    >>> from tweenstream.runtime.plan import compile_plan
    >>> engine = engine_for(compile_plan(Network(2, [Dense(3, "tanh"), Dense(2)])))
    >>> engine.kinds, engine.heuristic
    (('dense',), False)
    """

    kinds: tuple[str, ...]
    heuristic: bool
    learn_many: Any
    predict_many: Any
    accumulate_gradients: Any
    dispatch: dict[str, Any]  # role ("forward", ...) -> the compiled dispatcher of this engine

    @property
    def tag(self) -> str:
        """The suffix of this engine's compiled functions (and of their cache files)."""
        return suffix(self.kinds, self.heuristic)


_ENGINES: dict[tuple[tuple[str, ...], bool], Engine] = {}
_BUILDING = threading.Lock()


def suffix(kinds: tuple[str, ...], heuristic: bool) -> str:
    """A stable name for a kind set: a bit per op code, plus ``h`` with the heuristic sweep.

    Examples
    --------
    >>> suffix(("dense",), False), suffix(("dense", "flatten"), True)
    ('k2', 'k12h')
    """
    mask = sum(1 << kind_named(name).op_code for name in set(kinds))
    return f"k{mask:x}{'h' if heuristic else ''}"


def plan_kinds(plan: Plan) -> tuple[str, ...]:
    """The kinds of a plan's rows, sorted by op code (a Residual's begin and end rows count).

    Examples
    --------
    >>> from tweenstream.models import Dense, Network, Residual
    >>> from tweenstream.runtime.plan import compile_plan
    >>> plan_kinds(compile_plan(Network(3, [Residual([Dense(3)]), Dense(2)])))
    ('dense', 'residual_begin', 'residual_end')
    """
    from tweenstream.models.registry import kind_of

    found = {kind_of(spec) for spec, _, _ in plan.network.rows}
    return tuple(k.name for k in sorted(found, key=lambda k: k.op_code))


def _clone(fn: Any, glb: dict[str, Any], tag: str, inlined: bool = False) -> Any:
    """``fn`` compiled with other globals under a name of its own (Numba caches by qualified
    name); ``inlined`` compiles it into its callers."""
    copy = types.FunctionType(fn.__code__, glb, f"{fn.__name__}__{tag}", fn.__defaults__)
    copy.__qualname__ = f"{fn.__qualname__}__{tag}"
    copy.__module__ = fn.__module__
    copy.__doc__ = fn.__doc__
    return inline(copy) if inlined else kernel(copy)


def _build(kinds: tuple[str, ...], heuristic: bool) -> Engine:
    tag = suffix(kinds, heuristic)
    dglb = dict(vars(dispatch))
    for name in kinds:
        kind: LayerKind = kind_named(name)
        if kind.kernels is None:
            raise ValueError(f"layer kind {name!r} is never a plan row; it has no kernels")
        dglb.update(bound_names(kind))
    iglb = dict(vars(interpreter))
    for name in _DISPATCHERS:
        iglb[name] = _clone(getattr(dispatch, name), dglb, tag, False)
    for name, (fn, inlined) in PER_KINDS.items():
        if name == _HEURISTIC_ONLY and not heuristic:
            iglb[name] = _absent_heuristic
        else:
            iglb[name] = _clone(fn, iglb, tag, inlined)
    from tweenstream.runtime.precompile import start_helper

    start_helper(kinds, iglb["learn_many"], heuristic)
    return Engine(kinds, heuristic, iglb["learn_many"], iglb["predict_many"],
                  iglb["accumulate_gradients"],
                  {name.split("_")[0]: iglb[name] for name in _DISPATCHERS})


def engine_for(plan: Plan, heuristic: bool = False) -> Engine:
    """The engine of a plan's kinds (built on first use; compiled on its first call).

    ``heuristic`` adds the tween-heuristic sweep, needed while the mode in effect is
    ``tween-heuristic``.
    """
    return engine_of(plan_kinds(plan), heuristic)


def engine_of(kinds: Iterable[str], heuristic: bool = False) -> Engine:
    """The engine of a set of kind names (e.g. ``("dense", "lstm")``).

    Examples
    --------
    >>> engine_of(["dense"]) is engine_of(("dense", "dense"))
    True
    """
    names = tuple(sorted(set(kinds), key=lambda n: kind_named(n).op_code))
    key = (names, bool(heuristic))
    engine = _ENGINES.get(key)
    if engine is None:
        with _BUILDING:  # learners of a daemon's pool threads may ask for it at once
            engine = _ENGINES.get(key)
            if engine is None:
                engine = _ENGINES[key] = _build(names, bool(heuristic))
    return engine


POLICY_ENV = "TWEENSTREAM_ENGINE"


def learner_engine(kinds: Iterable[str], heuristic: bool) -> Engine:
    """The engine a Learner uses: by default the one of its own kinds. With the environment
    variable ``TWEENSTREAM_ENGINE=all``, one engine of every kind (heuristic sweep included)
    serves every network of the process: one longer compilation instead of one per kind set,
    for a process that builds networks of many different kinds (a test suite, a notebook
    comparing architectures).

    Examples
    --------
    >>> learner_engine(["dense"], False).kinds
    ('dense',)
    """
    policy = os.environ.get(POLICY_ENV, "kinds")
    if policy == "kinds":
        return engine_of(kinds, heuristic)
    if policy == "all":
        return engine_of(all_row_kinds(), True)
    raise ValueError(f"{POLICY_ENV} must be 'kinds' or 'all', found {policy!r}")


def all_row_kinds() -> tuple[str, ...]:
    """Every registered kind that becomes a plan row.

    Examples
    --------
    >>> "residual" in all_row_kinds(), "residual_begin" in all_row_kinds()
    (False, True)
    """
    return tuple(k.name for k in kinds() if k.kernels is not None)


def engines() -> list[Engine]:
    """The engines built in this process so far.

    Examples
    --------
    >>> engine_of(["dense"]) in engines()
    True
    """
    return list(_ENGINES.values())

