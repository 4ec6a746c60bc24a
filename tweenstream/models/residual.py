"""Residual: ``y = x + f(x)`` around a sub-stack whose output shape equals its input shape.

A Residual never nests at run time: the network expands it into a begin row (which copies x
for the inner stack), the inner rows, and an end row (which adds x back). Backward, the end
row passes its signal to the inner stack and the begin row adds it to the inner stack's
signal, so the skip path carries the gradient unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tweenstream.models.registry import LayerKind, Shape, register


@dataclass(frozen=True)
class Residual:
    """``y = x + layers(x)``; the inner layers must keep the shape of x.

    Examples
    --------
    >>> from tweenstream.models import Dense
    >>> len(Residual([Dense(8, "tanh"), Dense(8)]).layers)
    2
    """

    layers: tuple[Any, ...]

    def __init__(self, layers: Sequence[Any]) -> None:
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
            raise TypeError("Residual takes a non-empty list of layer specs, e.g. "
                            "Residual([Dense(8, 'tanh'), Dense(8)])")
        object.__setattr__(self, "layers", tuple(layers))


@dataclass(frozen=True)
class ResidualBegin:
    """The plan row that opens a Residual (internal: networks create it)."""


@dataclass(frozen=True)
class ResidualEnd:
    """The plan row that closes a Residual (internal: networks create it)."""


def _same(spec: object, in_shape: Shape) -> Shape:
    return in_shape


def _no_params(spec: object, in_shape: Shape) -> list:
    return []


def _example():  # a small classifier that uses the kind, for the suites run over every kind
    from tweenstream.models import Dense, Network

    return Network(4, [Dense(5, "tanh"), Residual([Dense(5, "tanh"), Dense(5)]),
                       Residual([Residual([Dense(5, "relu")]), Dense(5)]), Dense(3)])


# "other": the output offset of the matching row (the plan links each begin with its end)
RESIDUAL_BEGIN = register(LayerKind(
    name="residual_begin", spec_type=ResidualBegin, op_code=14, type_rate=1.0,
    output_shape=_same, param_shapes=_no_params, init=lambda spec, s, rng: [],
    plan_dims=lambda spec, s: {"other": 0}, dims=("other",), heuristic="pass",
    kernels="tweenstream.runtime.residual:BEGIN_KERNELS",
    converter="tweenstream.export.residual:convert_begin", oracle="residual", example=_example,
))
RESIDUAL_END = register(LayerKind(
    name="residual_end", spec_type=ResidualEnd, op_code=15, type_rate=1.0,
    output_shape=_same, param_shapes=_no_params, init=lambda spec, s, rng: [],
    plan_dims=lambda spec, s: {"other": 0}, dims=("other",), heuristic="pass",
    kernels="tweenstream.runtime.residual:END_KERNELS",
    converter="tweenstream.export.residual:convert_end", oracle="residual", example=_example,
))
# The user-facing spec is not itself a row, but it is registered so that networks can name
# and validate it; its op code never reaches the interpreter.
RESIDUAL = register(LayerKind(
    name="residual", spec_type=Residual, op_code=16, type_rate=1.0,
    output_shape=_same, param_shapes=_no_params, init=lambda spec, s, rng: [],
    plan_dims=lambda spec, s: {}, heuristic="pass",
    converter="tweenstream.export.residual:convert_residual", oracle="residual",
    example=_example,
))
