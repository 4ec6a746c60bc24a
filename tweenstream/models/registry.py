"""The one registry of layer kinds.

Each kind is registered once, with everything the rest of the package needs to know about it:
its spec class, integer op code (for the compiled interpreter), Loom's tween rate multiplier,
its output-shape rule, its parameter tensors and their initialiser, the named integers its plan
row holds, and where its other parts live: the compiled kernels (``runtime/``), the ONNX
converter (``export/``), the NumPy oracle (``tests/oracle/``) and an example network for the
shared test suites. Parts in other subpackages are named by import path ("module:attribute") and
imported on first use, so ``models`` never imports ``runtime`` or ``export``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Shape = tuple[int, ...]
MAX_DIMS = 24  # kind-specific integers per plan row: dims, parameter and scratch offsets


@dataclass(frozen=True)
class LayerKind:
    """Everything the package knows about one kind of layer.

    Attributes
    ----------
    name : str
        Kind name used in saved files, e.g. ``"dense"``.
    spec_type : type
        The frozen dataclass users instantiate, e.g. ``Dense``.
    op_code : int
        Row code of the compiled interpreter. Part of no file format; may change.
    type_rate : float
        Per-kind multiplier of the tween rate: Loom's defaults (TWEENING.md) for a kind whose
        weights are used once per sample; per position for a kind with ``shared_over``.
    shared_over : callable(spec, in_shape) -> int, or None
        For a kind whose weights are shared over positions (the steps of a recurrent layer,
        the output positions of a convolution): how many. Its update sums one contribution
        per position, so a layer's type rate is ``type_rate / sqrt(positions)`` (``rate_of``);
        such kinds give ``type_rate`` 1.0, a Dense weight's.
    output_shape : callable(spec, in_shape) -> Shape
        Shape of the layer's output for a given input shape (no batch axis).
    param_shapes : callable(spec, in_shape) -> list of (name, Shape)
        The parameter tensors, in the order they are laid out in the arena.
    init : callable(spec, in_shape, rng) -> list of float32 arrays
        Seeded initial values, in ``param_shapes`` order.
    plan_dims : callable(spec, in_shape) -> dict of str to int
        Kind-specific integers stored in the plan row, by name: exactly the names of ``dims``.
    dims : tuple of str
        Names of the kind-specific integers (sizes, strides, flags), in column order.
    params : tuple of str
        Names of the parameter tensors, in ``param_shapes`` order: the plan stores the offset of
        each in the row, under its name.
    segments : tuple of str
        Names of the scratch segments, in ``scratch`` order: the plan stores the offset of each
        (in every work row) under its name.
    scratch : callable(spec, in_shape) -> dict of str to int
        Sizes of the per-sample scratch segments the kind's kernels need (forward caches,
        gradients), by name: exactly the names of ``segments``.

    ``dims + segments + params`` is the kind's row layout (at most ``MAX_DIMS`` names; kinds
    that share kernels share its prefix, e.g. LayerNorm and RMSNorm up to ``gamma``);
    compiled kernels read a column by name (``runtime.layout.dim``) and never compute an
    offset the plan stores.
    heuristic : {"project", "pass", "keep"}
        How ``tween-heuristic`` carries a target to the layer's input: through the kind's own
        projection kernel, passed through unchanged (shape-preserving kinds), or not at all
        (the input keeps its activation as its target).
    kernels : str or None
        "module:attribute" of the kind's ``runtime.kernels.Kernels`` bundle; None for a spec
        that never becomes a plan row of its own (Residual compiles to begin and end rows).
    converter : str or None
        "module:attribute" of the kind's ONNX converter (see ``export.registry``).
    oracle : str or None
        Name of the kind's plain-NumPy oracle module in ``tests/oracle/``.
    example : callable() -> Network, or None
        A small classifier (3 classes) that uses the kind, for the suites run over every kind.
    tolerance : float
        Largest absolute difference allowed between onnxruntime and the compiled forward on an
        exported network (a network uses its loosest kind's).
    """

    name: str
    spec_type: type
    op_code: int
    type_rate: float
    output_shape: Callable[[Any, Shape], Shape]
    param_shapes: Callable[[Any, Shape], list[tuple[str, Shape]]]
    init: Callable[[Any, Shape, np.random.Generator], list[np.ndarray]]
    plan_dims: Callable[[Any, Shape], dict[str, int]]
    dims: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    scratch: Callable[[Any, Shape], dict[str, int]] = field(default=lambda spec, in_shape: {})
    heuristic: str = "project"
    kernels: str | None = None
    converter: str | None = None
    oracle: str | None = None
    example: Callable[[], Any] | None = None
    tolerance: float = 1e-5
    shared_over: Callable[[Any, Shape], int] | None = None

    def rate_of(self, spec: Any, in_shape: Shape) -> float:
        """The kind's type rate for one layer: ``type_rate``, divided by ``sqrt(positions)`` for
        a kind whose weights are shared over positions.

        Examples
        --------
        >>> from tweenstream.models import RNN, Dense
        >>> kind_of(Dense(4)).rate_of(Dense(4), (8,)), kind_of(RNN(4)).rate_of(RNN(4), (16, 3))
        (1.0, 0.25)
        """
        if self.shared_over is None:
            return self.type_rate
        return self.type_rate / math.sqrt(max(int(self.shared_over(spec, in_shape)), 1))

    def __post_init__(self) -> None:
        if self.heuristic not in ("project", "pass", "keep"):
            raise ValueError(f"heuristic must be project, pass or keep, found {self.heuristic!r}")
        names = self.row_names
        if len(names) > MAX_DIMS or len(set(names)) != len(names):
            raise ValueError(f"dims, segments and params of {self.name!r} must be at most "
                             f"{MAX_DIMS} distinct names, found {names}")

    @property
    def row_names(self) -> tuple[str, ...]:
        """The kind's row layout: ``dims + segments + params``, in column order."""
        return self.dims + self.segments + self.params

    def row_dims(self, spec: Any, in_shape: Shape) -> tuple[int, ...]:
        """The kind's row integers for one layer, in ``dims`` order (checked by name).

        Examples
        --------
        >>> from tweenstream.models.dense import DENSE, Dense
        >>> DENSE.row_dims(Dense(3), (5,))
        (5, 3)
        """
        values = self.plan_dims(spec, in_shape)
        if tuple(values) != self.dims:
            raise ValueError(f"plan_dims of {self.name!r} returned {tuple(values)}; the kind "
                             f"declares {self.dims}")
        return tuple(int(values[name]) for name in self.dims)

    def param_list(self, spec: Any, in_shape: Shape) -> list[tuple[str, Shape]]:
        """``param_shapes``, checked against the declared ``params`` names.

        Examples
        --------
        >>> from tweenstream.models.dense import DENSE, Dense
        >>> DENSE.param_list(Dense(3), (5,))
        [('W', (3, 5)), ('b', (3,))]
        """
        shapes = self.param_shapes(spec, in_shape)
        if tuple(name for name, _ in shapes) != self.params:
            raise ValueError(f"param_shapes of {self.name!r} names "
                             f"{tuple(n for n, _ in shapes)}; the kind declares {self.params}")
        return shapes

    def scratch_sizes(self, spec: Any, in_shape: Shape) -> tuple[int, ...]:
        """Sizes of the scratch segments of one layer, in ``segments`` order (checked by name).

        Examples
        --------
        >>> from tweenstream.models.dense import DENSE, Dense
        >>> DENSE.scratch_sizes(Dense(3), (5,))
        ()
        """
        sizes = self.scratch(spec, in_shape)
        if tuple(sizes) != self.segments:
            raise ValueError(f"scratch of {self.name!r} returned {tuple(sizes)}; the kind "
                             f"declares {self.segments}")
        return tuple(int(sizes[name]) for name in self.segments)

    def part(self, which: str) -> Any:
        """Import and return one part named by path: ``"kernels"`` or ``"converter"``.

        Examples
        --------
        >>> from tweenstream.models.dense import DENSE
        >>> DENSE.part("kernels").forward.__name__
        'dense_forward'
        """
        path = getattr(self, which)
        if path is None:
            raise LookupError(f"layer kind {self.name!r} has no {which}")
        module, _, attribute = path.partition(":")
        return getattr(importlib.import_module(module), attribute)


_BY_NAME: dict[str, LayerKind] = {}
_BY_TYPE: dict[type, LayerKind] = {}
_BY_CODE: dict[int, LayerKind] = {}


def register(kind: LayerKind) -> LayerKind:
    """Register a layer kind; refuse a duplicate name, spec type or op code.

    Examples
    --------
    >>> from tweenstream.models.dense import DENSE
    >>> register(DENSE)
    Traceback (most recent call last):
    ...
    ValueError: layer kind 'dense' is already registered
    """
    if kind.name in _BY_NAME:
        raise ValueError(f"layer kind {kind.name!r} is already registered")
    if kind.spec_type in _BY_TYPE:
        raise ValueError(f"spec type {kind.spec_type.__name__} is already registered")
    if kind.op_code in _BY_CODE:
        other = _BY_CODE[kind.op_code].name
        raise ValueError(f"op code {kind.op_code} of {kind.name!r} is already used by {other!r}")
    _BY_NAME[kind.name] = kind
    _BY_TYPE[kind.spec_type] = kind
    _BY_CODE[kind.op_code] = kind
    return kind


def kind_of(spec: object) -> LayerKind:
    """Return the registered kind of a layer spec instance.

    Examples
    --------
    >>> from tweenstream.models.dense import Dense
    >>> kind_of(Dense(4)).name
    'dense'
    """
    kind = _BY_TYPE.get(type(spec))
    if kind is None:
        known = ", ".join(k.spec_type.__name__ for k in _BY_NAME.values())
        raise TypeError(f"{spec!r} is not a layer spec; use one of {known}")
    return kind


def kind_named(name: str) -> LayerKind:
    """Return the registered kind called ``name`` (as stored in saved files).

    Examples
    --------
    >>> kind_named("dense").spec_type.__name__
    'Dense'
    """
    kind = _BY_NAME.get(name)
    if kind is None:
        raise ValueError(f"unknown layer kind {name!r}; known kinds: {', '.join(sorted(_BY_NAME))}")
    return kind


def kinds() -> list[LayerKind]:
    """All registered kinds, in registration order.

    Examples
    --------
    >>> "dense" in [k.name for k in kinds()]
    True
    """
    return list(_BY_NAME.values())


def steps(spec: Any, in_shape: Shape) -> int:
    """The steps of a sequence input ``(steps, features)``: a recurrent kind's positions.

    >>> steps(None, (8, 3))
    8
    """
    return int(in_shape[0])


def output_positions(spec: Any, in_shape: Shape) -> int:
    """The positions of a layer's output, all axes but the last (channels or units): a
    convolution's positions.

    >>> from tweenstream.models import Conv2D
    >>> output_positions(Conv2D(4, 3, padding="same"), (8, 8, 1))
    64
    """
    return int(math.prod(kind_of(spec).output_shape(spec, in_shape)[:-1]))
