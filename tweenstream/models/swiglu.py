"""SwiGLU: a gated feed-forward block applied to each row of the last axis.

Shapes: input (..., d) as R rows of d; gate W_g (h, d), b_g (h,); up W_u (h, d), b_u (h,);
down W_d (o, h), b_d (o,); per row s = silu(W_g x + b_g) * (W_u x + b_u) and y = W_d s + b_d;
output (..., o) with o = d unless ``out`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tweenstream.models.init import xavier_uniform
from tweenstream.models.registry import LayerKind, Shape, register


@dataclass(frozen=True)
class SwiGLU:
    """``y = W_d (silu(W_g x) * W_u x)`` with ``hidden`` units, per row of the last axis.

    Examples
    --------
    >>> SwiGLU(16)
    SwiGLU(hidden=16, out=None)
    """

    hidden: int
    out: int | None = None

    def __post_init__(self) -> None:
        for name in ("hidden", "out"):
            value = getattr(self, name)
            if value is None and name == "out":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"SwiGLU.{name} must be an int, found {type(value).__name__}")
            if value < 1:
                raise ValueError(f"SwiGLU.{name} must be >= 1, found {value}")
            object.__setattr__(self, name, int(value))


def _rows(in_shape: Shape) -> tuple[int, int]:
    d = in_shape[-1]
    return int(np.prod(in_shape)) // d, d


def _out(spec: SwiGLU, in_shape: Shape) -> int:
    return spec.out if spec.out is not None else in_shape[-1]


def _param_shapes(spec: SwiGLU, in_shape: Shape) -> list[tuple[str, Shape]]:
    _, d = _rows(in_shape)
    h, o = spec.hidden, _out(spec, in_shape)
    return [("W_g", (h, d)), ("W_u", (h, d)), ("W_d", (o, h)), ("b_g", (h,)), ("b_u", (h,)),
            ("b_d", (o,))]


def _init(spec: SwiGLU, in_shape: Shape, rng: np.random.Generator) -> list[np.ndarray]:
    _, d = _rows(in_shape)
    h, o = spec.hidden, _out(spec, in_shape)
    return [xavier_uniform(rng, d, h, (h, d)), xavier_uniform(rng, d, h, (h, d)),
            xavier_uniform(rng, h, o, (o, h)), np.zeros(h, np.float32),
            np.zeros(h, np.float32), np.zeros(o, np.float32)]


def _scratch(spec: SwiGLU, in_shape: Shape) -> dict[str, int]:
    """Per row gate, up and s (3h each); ds, dg, du (3h); the gradients (laid out like the
    parameters)."""
    R, d = _rows(in_shape)
    h, o = spec.hidden, _out(spec, in_shape)
    return {"rows_cache": 3 * R * h, "grad_hidden": 3 * h, "grads": 2 * h * d + o * h + 2 * h + o}


def _example():  # a small classifier that uses the kind, for the suites run over every kind
    from tweenstream.models import Dense, Flatten, Network, SwiGLU

    return Network((2, 4), [SwiGLU(6), SwiGLU(5, out=3), Flatten(), Dense(3)])


SWIGLU = register(LayerKind(
    name="swiglu", spec_type=SwiGLU, op_code=12, type_rate=0.2,
    output_shape=lambda spec, s: (*s[:-1], _out(spec, s)),
    param_shapes=_param_shapes, init=_init,
    plan_dims=lambda spec, s: dict(zip(("rows", "d"), _rows(s), strict=True),
                                   hidden=spec.hidden, out=_out(spec, s)),
    dims=("rows", "d", "hidden", "out"), scratch=_scratch,
    segments=("rows_cache", "grad_hidden", "grads"),
    params=("W_g", "W_u", "W_d", "b_g", "b_u", "b_d"),
    kernels="tweenstream.runtime.swiglu:SWIGLU_KERNELS",
    converter="tweenstream.export.swiglu:convert_swiglu", oracle="swiglu", example=_example,
))
