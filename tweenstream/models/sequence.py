"""Sequence outputs: TimeDense (a Dense at every step) and RepeatVector (a vector to a sequence).

Shapes: TimeDense takes x (steps, d) to (steps, units) with W (units, d) and b (units,), the
same W and b at every step: a_t = f(W x_t + b). It is a Conv1D of kernel 1 and shares its
compiled kernels (so its update sums the steps' contributions, as a convolution's does).
RepeatVector takes v (d,) to (steps, d), v at every step; it has no parameters. Together they
declare encoder -> bottleneck -> decoder networks, e.g. an LSTM autoencoder::

    Network((8, 4), [LSTM(16), Dense(3), RepeatVector(8), LSTM(16, return_sequences=True),
                     TimeDense(4)], task="regression")
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tweenstream.models.activations import canonical_activation
from tweenstream.models.conv import CONV_DIMS, _positive
from tweenstream.models.init import INITIALISERS, initialiser
from tweenstream.models.registry import LayerKind, Shape, output_positions, register


@dataclass(frozen=True)
class TimeDense:
    """A Dense layer applied at every step of a sequence: ``a_t = f(W x_t + b)``.

    Parameters
    ----------
    units : int
        Outputs per step.
    activation : str
        As Dense, except softmax.
    init : str
        ``"xavier"``, ``"he"`` or ``"auto"``.

    Examples
    --------
    >>> TimeDense(4)
    TimeDense(units=4, activation='linear', init='auto')
    >>> from tweenstream import Network
    >>> Network((6, 3), [TimeDense(2, "tanh")], task="regression").shapes
    ((6, 2),)
    """

    units: int
    activation: str = "linear"
    init: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", _positive("TimeDense.units", self.units))
        object.__setattr__(self, "activation",
                           canonical_activation(self.activation, "TimeDense.activation"))
        if self.activation == "softmax":
            raise ValueError("TimeDense.activation: softmax belongs on a classifier's Dense "
                             "output")
        if self.init not in INITIALISERS:
            raise ValueError(f"TimeDense.init must be one of {INITIALISERS}, found {self.init!r}")


@dataclass(frozen=True)
class RepeatVector:
    """Repeat a vector at every step: (d,) to (steps, d), e.g. a bottleneck fed to a decoder.

    Examples
    --------
    >>> RepeatVector(8)
    RepeatVector(steps=8)
    >>> from tweenstream import Dense, Network
    >>> Network(3, [RepeatVector(5), TimeDense(2)], task="regression").shapes
    ((5, 3), (5, 2))
    """

    steps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", _positive("RepeatVector.steps", self.steps))


def _sequence(in_shape: Shape) -> tuple[int, int]:
    if len(in_shape) != 2:
        raise ValueError(f"TimeDense expects a sequence (steps, d), found shape {in_shape}; use "
                         "Dense on a flat input, or RepeatVector to make a sequence")
    return in_shape[0], in_shape[1]


def _time_dense_shape(spec: TimeDense, in_shape: Shape) -> Shape:
    return (_sequence(in_shape)[0], spec.units)


def _time_dense_params(spec: TimeDense, in_shape: Shape) -> list[tuple[str, Shape]]:
    return [("W", (spec.units, _sequence(in_shape)[1])), ("b", (spec.units,))]


def _time_dense_init(spec: TimeDense, in_shape: Shape,
                     rng: np.random.Generator) -> list[np.ndarray]:
    d = _sequence(in_shape)[1]
    W = initialiser(spec.init, spec.activation)(rng, d, spec.units, (spec.units, d))
    return [W, np.zeros(spec.units, np.float32)]


def _time_dense_dims(spec: TimeDense, in_shape: Shape) -> dict[str, int]:
    """A Conv1D of kernel 1, stride 1 and no padding, in the convolution's row layout."""
    steps, d = _sequence(in_shape)
    return dict(zip(CONV_DIMS, (1, steps, d, 1, 1, 1, 0, 0, 1, steps), strict=True))


def _time_dense_example():  # a small classifier that uses the kind, for the shared suites
    from tweenstream.models import Dense, Flatten, Network

    return Network((4, 3), [TimeDense(5, "tanh"), TimeDense(2), Flatten(), Dense(3)])


def _repeat_shape(spec: RepeatVector, in_shape: Shape) -> Shape:
    if len(in_shape) != 1:
        raise ValueError(f"RepeatVector expects a flat input (d,), found shape {in_shape}; "
                         "flatten it first")
    return (spec.steps, in_shape[0])


def _repeat_example():
    from tweenstream.models import LSTM, Dense, Network

    return Network(4, [Dense(3, "tanh"), RepeatVector(3), LSTM(4), Dense(3)])


TIME_DENSE = register(LayerKind(
    name="time_dense", spec_type=TimeDense, op_code=17, type_rate=1.0,
    shared_over=output_positions,
    output_shape=_time_dense_shape, param_shapes=_time_dense_params, init=_time_dense_init,
    plan_dims=_time_dense_dims, dims=CONV_DIMS, segments=("grads",), params=("W", "b"),
    scratch=lambda spec, s: {"grads": spec.units * _sequence(s)[1] + spec.units},
    kernels="tweenstream.runtime.conv:CONV_KERNELS",
    converter="tweenstream.export.sequence:convert_time_dense", oracle="sequence",
    example=_time_dense_example,
))
REPEAT_VECTOR = register(LayerKind(
    name="repeat_vector", spec_type=RepeatVector, op_code=18, type_rate=1.0,
    output_shape=_repeat_shape, param_shapes=lambda spec, s: [], init=lambda spec, s, rng: [],
    plan_dims=lambda spec, s: {"steps": spec.steps}, dims=("steps",),
    kernels="tweenstream.runtime.sequence:REPEAT_KERNELS",
    converter="tweenstream.export.sequence:convert_repeat_vector", oracle="sequence",
    example=_repeat_example,
))
