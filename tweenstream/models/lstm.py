"""LSTM over a sample that is a sequence ``(steps, features)``.

Shapes: input x (T, F); W (4H, F), U (4H, H), b (4H,), gates stacked in the order i, f, g, o:
i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.) of W x_t + U h_{t-1} + b;
c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t), with h and c starting at 0. The output is the
last state (H,) or every state (T, H) with ``return_sequences``. The forget-gate bias starts at
1, so the cell remembers by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tweenstream.models.init import xavier_uniform
from tweenstream.models.registry import LayerKind, Shape, register, steps
from tweenstream.models.rnn import RNN, _check


@dataclass(frozen=True)
class LSTM(RNN):
    """An LSTM with ``units`` hidden units (same arguments as ``RNN``).

    Examples
    --------
    >>> LSTM(8)
    LSTM(units=8, return_sequences=False)
    """


def _param_shapes(spec: LSTM, in_shape: Shape) -> list[tuple[str, Shape]]:
    _, F = _check(in_shape)
    H = spec.units
    return [("W", (4 * H, F)), ("U", (4 * H, H)), ("b", (4 * H,))]


def _init(spec: LSTM, in_shape: Shape, rng: np.random.Generator) -> list[np.ndarray]:
    _, F = _check(in_shape)
    H = spec.units
    b = np.zeros(4 * H, np.float32)
    b[H:2 * H] = 1.0
    return [xavier_uniform(rng, F, H, (4 * H, F)), xavier_uniform(rng, H, H, (4 * H, H)), b]


def _scratch(spec: LSTM, in_shape: Shape) -> dict[str, int]:
    """Gates, c, tanh c and h of every step; dz of the gates; dh, dc; the gradients (laid out
    like the parameters)."""
    T, F = _check(in_shape)
    H = spec.units
    return {"gates": 4 * T * H, "cells": T * H, "tanh_cells": T * H, "states": T * H,
            "grad_gates": 4 * T * H, "grad_state": H, "grad_cell": H,
            "grads": 4 * H * F + 4 * H * H + 4 * H}


def _example():  # a small classifier that uses the kind, for the suites run over every kind
    from tweenstream.models import LSTM, Dense, Network

    return Network((3, 2), [LSTM(4, return_sequences=True), LSTM(3), Dense(3)])


LSTM_KIND = register(LayerKind(
    name="lstm", spec_type=LSTM, op_code=6, type_rate=1.0, shared_over=steps,
    output_shape=lambda spec, s: (_check(s)[0], spec.units) if spec.return_sequences
    else (spec.units,),
    param_shapes=_param_shapes, init=_init,
    plan_dims=lambda spec, s: dict(zip(("steps", "features"), _check(s), strict=True),
                                   units=spec.units, sequences=int(spec.return_sequences)),
    dims=("steps", "features", "units", "sequences"), scratch=_scratch,
    segments=("gates", "cells", "tanh_cells", "states", "grad_gates", "grad_state", "grad_cell",
              "grads"),
    params=("W", "U", "b"),
    kernels="tweenstream.runtime.lstm:LSTM_KERNELS",
    converter="tweenstream.export.rnn:convert_lstm", oracle="lstm", example=_example,
))
