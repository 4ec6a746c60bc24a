"""RNN: a tanh recurrent layer over a sample that is a sequence ``(steps, features)``.

Shapes: input x (T, F); W_x (H, F), W_h (H, H), b (H,); h_t = tanh(W_x x_t + W_h h_{t-1} + b)
with h_{-1} = 0; output the last state (H,) or, with ``return_sequences``, every state (T, H).
T is the input's first axis: the sequence length a network declares is the maximum, and every
buffer is sized from it once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tweenstream.models.init import xavier_uniform
from tweenstream.models.registry import LayerKind, Shape, register, steps


@dataclass(frozen=True)
class RNN:
    """A tanh RNN with ``units`` hidden units.

    Examples
    --------
    >>> RNN(16, return_sequences=True)
    RNN(units=16, return_sequences=True)
    """

    units: int
    return_sequences: bool = False

    def __post_init__(self) -> None:
        kind = type(self).__name__
        if isinstance(self.units, bool) or not isinstance(self.units, (int, np.integer)):
            raise TypeError(f"{kind}.units must be an int, found {type(self.units).__name__}")
        if self.units < 1:
            raise ValueError(f"{kind}.units must be >= 1, found {self.units}")
        if not isinstance(self.return_sequences, bool):
            raise TypeError(f"{kind}.return_sequences must be True or False")
        object.__setattr__(self, "units", int(self.units))


def _check(in_shape: Shape) -> tuple[int, int]:
    if len(in_shape) != 2:
        raise ValueError(f"a recurrent layer expects a sequence (steps, features), found shape "
                         f"{in_shape}; give the network input_dim=(steps, features)")
    return in_shape[0], in_shape[1]


def _output_shape(spec: RNN, in_shape: Shape) -> Shape:
    T, _ = _check(in_shape)
    return (T, spec.units) if spec.return_sequences else (spec.units,)


def _param_shapes(spec: RNN, in_shape: Shape) -> list[tuple[str, Shape]]:
    _, F = _check(in_shape)
    H = spec.units
    return [("W_x", (H, F)), ("W_h", (H, H)), ("b", (H,))]


def _init(spec: RNN, in_shape: Shape, rng: np.random.Generator) -> list[np.ndarray]:
    _, F = _check(in_shape)
    H = spec.units
    # Xavier for the input weights; the recurrent weights start small so that early states do
    # not saturate
    return [xavier_uniform(rng, F, H, (H, F)), xavier_uniform(rng, H, H, (H, H)) * 0.5,
            np.zeros(H, np.float32)]


def _scratch(spec: RNN, in_shape: Shape) -> dict[str, int]:
    """States h and pre-activations z of every step, dz, dh, the gradients (laid out like the
    parameters)."""
    T, F = _check(in_shape)
    H = spec.units
    return {"states": T * H, "pre": T * H, "grad_pre": T * H, "grad_state": H,
            "grads": H * F + H * H + H}


def _example():  # a small classifier that uses the kind, for the suites run over every kind
    from tweenstream.models import RNN, Dense, Flatten, Network

    return Network((4, 3), [RNN(5, return_sequences=True), Flatten(), Dense(4, "tanh"),
                            Dense(3)])


RNN_KIND = register(LayerKind(
    name="rnn", spec_type=RNN, op_code=5, type_rate=1.0, shared_over=steps,
    output_shape=_output_shape, param_shapes=_param_shapes, init=_init,
    plan_dims=lambda spec, s: dict(zip(("steps", "features"), _check(s), strict=True),
                                   units=spec.units, sequences=int(spec.return_sequences)),
    dims=("steps", "features", "units", "sequences"), scratch=_scratch,
    segments=("states", "pre", "grad_pre", "grad_state", "grads"), params=("W_x", "W_h", "b"),
    kernels="tweenstream.runtime.rnn:RNN_KERNELS",
    converter="tweenstream.export.rnn:convert_rnn", oracle="rnn", example=_example,
))
