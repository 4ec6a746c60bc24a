"""Dense (fully connected) layer: spec, shapes and initialiser.

Shapes: input x (n_in,), weights W (n_out, n_in) row-major, bias b (n_out,),
pre-activation z = W x + b (n_out,), output a = f(z) (n_out,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tweenstream.models.activations import canonical_activation
from tweenstream.models.init import INITIALISERS, initialiser
from tweenstream.models.registry import LayerKind, Shape, register


@dataclass(frozen=True)
class Dense:
    """A fully connected layer ``a = f(W x + b)``.

    Parameters
    ----------
    units : int
        Number of outputs.
    activation : str
        One of linear, relu, leaky_relu, tanh, sigmoid, gelu, silu (swish), sine, or softmax
        (the output layer of a classifier only).
    init : str
        ``"xavier"``, ``"he"`` or ``"auto"`` (He for the ReLU family, Xavier otherwise).

    Examples
    --------
    >>> Dense(32, activation="tanh")
    Dense(units=32, activation='tanh', init='auto')
    """

    units: int
    activation: str = "linear"
    init: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.units, bool) or not isinstance(self.units, (int, np.integer)):
            raise TypeError(f"Dense.units must be an int, found {type(self.units).__name__}")
        if self.units < 1:
            raise ValueError(f"Dense.units must be >= 1, found {self.units}")
        object.__setattr__(self, "units", int(self.units))
        object.__setattr__(self, "activation",
                           canonical_activation(self.activation, "Dense.activation"))
        if self.init not in INITIALISERS:
            raise ValueError(f"Dense.init must be one of {INITIALISERS}, found {self.init!r}")


def _output_shape(spec: Dense, in_shape: Shape) -> Shape:
    if len(in_shape) != 1:
        raise ValueError(f"Dense expects a flat input (n,), found shape {in_shape}; "
                         "flatten the input, use a sequence layer first, or use TimeDense "
                         "for a Dense at every step")
    return (spec.units,)


def _param_shapes(spec: Dense, in_shape: Shape) -> list[tuple[str, Shape]]:
    return [("W", (spec.units, in_shape[0])), ("b", (spec.units,))]


def _init(spec: Dense, in_shape: Shape, rng: np.random.Generator) -> list[np.ndarray]:
    fan_in, fan_out = in_shape[0], spec.units
    W = initialiser(spec.init, spec.activation)(rng, fan_in, fan_out, (fan_out, fan_in))
    return [W, np.zeros(fan_out, dtype=np.float32)]


def _plan_dims(spec: Dense, in_shape: Shape) -> dict[str, int]:
    return {"n_in": in_shape[0], "n_out": spec.units}


def _example():  # a small classifier that uses the kind, for the suites run over every kind
    from tweenstream.models import Network

    return Network(6, [Dense(5, "tanh"), Dense(3)])


DENSE = register(LayerKind(
    name="dense", spec_type=Dense, op_code=1, type_rate=1.0,
    output_shape=_output_shape, param_shapes=_param_shapes, init=_init, plan_dims=_plan_dims,
    dims=("n_in", "n_out"), params=("W", "b"), kernels="tweenstream.runtime.dense:DENSE_KERNELS",
    converter="tweenstream.export.dense:convert_dense", oracle="dense", example=_example,
))
