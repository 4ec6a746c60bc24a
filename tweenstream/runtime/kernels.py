"""What a layer kind's compiled part is: the bundle of kernels the dispatchers call.

Each kind's runtime module defines one ``Kernels`` value and its registry entry names it
(``LayerKind.kernels = "tweenstream.runtime.dense:DENSE_KERNELS"``). The dispatchers in
``dispatch.py`` are generated from the registry and call these by role; ``engine.py`` compiles,
for each set of kinds a network uses, only those kinds' kernels.

Signatures (``row`` is the layer's plan row; ``pbuf``/``work`` the shared buffers, see
``layout.py``):
- ``forward(row, pbuf, work)``: activations (and pre-activations) at the output slot;
- ``signal(row, pbuf, work, need_input)``: exact backward signal, g of the input if asked;
- ``update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate) -> float64``: apply
  (or accumulate) the update from the local error; returns the parameters' new sum of squares;
  ``None`` for a kind without parameters;
- ``project(row, pbuf, work, lo, hi)``: tween-heuristic target of the input; ``None`` unless the
  kind's heuristic rule is ``"project"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from tweenstream.runtime.numba_config import kernel

if TYPE_CHECKING:
    from tweenstream.models.registry import LayerKind

ROLES = ("forward", "signal", "update", "project")


class Kernels(NamedTuple):
    """The compiled kernels of one layer kind, by role.

    Examples
    --------
    >>> from tweenstream.runtime.flatten import FLATTEN_KERNELS
    >>> FLATTEN_KERNELS.update is None
    True
    """

    forward: Any
    signal: Any
    update: Any = None
    project: Any = None


_ABSENT = "this engine was compiled without the layer kind of a plan row; use engine_for(plan)"


@kernel
def unknown_op(op):
    """Raise for a plan row whose op code no registered kind has."""
    raise ValueError("a plan row has an op code that no registered layer kind has")


@kernel
def absent_forward(row, pbuf, work):
    """Stands in for the forward kernel of a kind the engine was not compiled for."""
    raise RuntimeError(_ABSENT)


@kernel
def absent_signal(row, pbuf, work, need_input):
    """Stands in for the signal kernel of a kind the engine was not compiled for."""
    raise RuntimeError(_ABSENT)


@kernel
def absent_update(row, pbuf, work, coef_w, coef_b, lim, va, vb, vc, accumulate):
    """Stands in for the update kernel of a kind the engine was not compiled for."""
    if row[0] >= 0:
        raise RuntimeError(_ABSENT)
    return 0.0


@kernel
def absent_project(row, pbuf, work, lo, hi):
    """Stands in for the projection kernel of a kind the engine was not compiled for."""
    raise RuntimeError(_ABSENT)


def bound_names(kind: LayerKind) -> dict[str, object]:
    """The dispatch names a kind's kernels bind to, e.g. ``{"forward_dense": dense_forward}``.

    Examples
    --------
    >>> from tweenstream.models.dense import DENSE
    >>> sorted(bound_names(DENSE))
    ['forward_dense', 'project_dense', 'signal_dense', 'update_dense']
    """
    bundle = kind.part("kernels")
    names = {}
    for role in ROLES:
        fn = getattr(bundle, role)
        if fn is not None and (role != "project" or kind.heuristic == "project"):
            names[f"{role}_{kind.name}"] = fn
    return names
