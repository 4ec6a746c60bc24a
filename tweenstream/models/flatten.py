"""Flatten: any input shape to one flat vector (no parameters)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tweenstream.models.registry import LayerKind, register


@dataclass(frozen=True)
class Flatten:
    """Reshape the input to ``(n,)``, e.g. a sequence ``(steps, d)`` before a Dense layer.

    Examples
    --------
    >>> Flatten()
    Flatten()
    """


def _example():  # a small classifier that uses the kind, for the suites run over every kind
    from tweenstream.models import Dense, Flatten, Network

    return Network((2, 3), [Flatten(), Dense(3)])


FLATTEN = register(LayerKind(
    name="flatten", spec_type=Flatten, op_code=4, type_rate=1.0,
    output_shape=lambda spec, s: (int(np.prod(s)),),
    param_shapes=lambda spec, s: [], init=lambda spec, s, rng: [],
    plan_dims=lambda spec, s: {}, heuristic="pass",
    kernels="tweenstream.runtime.flatten:FLATTEN_KERNELS",
    converter="tweenstream.export.norm:convert_flatten", oracle="network", example=_example,
))
