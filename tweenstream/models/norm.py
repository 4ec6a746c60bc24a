"""LayerNorm and RMSNorm: normalise each row of the last axis, then a learned scale (and shift).

Shapes: input x (..., d) flattened to R rows of d; gamma (d,), beta (d,) for LayerNorm only;
output a (..., d), same shape as the input. eps is fixed: 1e-5 (LayerNorm) and 1e-6 (RMSNorm),
PyTorch's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tweenstream.models.registry import LayerKind, Shape, register

LAYER_NORM_EPS = 1e-5
RMS_NORM_EPS = 1e-6


@dataclass(frozen=True)
class LayerNorm:
    """``a = gamma * (x - mean) / sqrt(var + 1e-5) + beta`` over the last axis.

    Examples
    --------
    >>> LayerNorm()
    LayerNorm()
    """


@dataclass(frozen=True)
class RMSNorm:
    """``a = gamma * x / sqrt(mean(x²) + 1e-6)`` over the last axis.

    Examples
    --------
    >>> RMSNorm()
    RMSNorm()
    """


def _same(spec: object, in_shape: Shape) -> Shape:
    return in_shape


def _features(in_shape: Shape) -> int:
    return in_shape[-1]


def _dims(shift: int):
    def dims(spec: object, in_shape: Shape) -> dict[str, int]:
        d = _features(in_shape)
        return {"features": d, "rows": int(np.prod(in_shape)) // d, "shift": shift}
    return dims


NORM_DIMS = ("features", "rows", "shift")


def _layer_example():
    from tweenstream.models import Dense, Flatten, LayerNorm, Network

    return Network((3, 4), [LayerNorm(), Flatten(), Dense(3)])


def _rms_example():
    from tweenstream.models import Dense, Flatten, Network, RMSNorm

    return Network((3, 4), [RMSNorm(), Flatten(), Dense(5, "relu"), Dense(3)])


def _scratch(spec: object, in_shape: Shape) -> dict[str, int]:
    """x-hat, 1/std per row, and the gamma and beta gradient accumulators."""
    n, d = int(np.prod(in_shape)), _features(in_shape)
    return {"xhat": n, "rstd": n // d, "grad_gamma": d, "grad_beta": d}


NORM_SEGMENTS = ("xhat", "rstd", "grad_gamma", "grad_beta")


LAYER_NORM = register(LayerKind(
    name="layer_norm", spec_type=LayerNorm, op_code=2, type_rate=0.1,
    output_shape=_same,
    param_shapes=lambda spec, s: [("gamma", (_features(s),)), ("beta", (_features(s),))],
    init=lambda spec, s, rng: [np.ones(_features(s), np.float32),
                               np.zeros(_features(s), np.float32)],
    plan_dims=_dims(1), dims=NORM_DIMS, segments=NORM_SEGMENTS, params=("gamma", "beta"),
    scratch=_scratch, heuristic="pass",
    kernels="tweenstream.runtime.norm:LAYER_NORM_KERNELS",
    converter="tweenstream.export.norm:convert_layer_norm", oracle="norm",
    example=_layer_example,
))
RMS_NORM = register(LayerKind(
    name="rms_norm", spec_type=RMSNorm, op_code=3, type_rate=0.1,
    output_shape=_same,
    param_shapes=lambda spec, s: [("gamma", (_features(s),))],
    init=lambda spec, s, rng: [np.ones(_features(s), np.float32)],
    plan_dims=_dims(0), dims=NORM_DIMS, segments=NORM_SEGMENTS, params=("gamma",),
    scratch=_scratch, heuristic="pass",
    kernels="tweenstream.runtime.norm:RMS_NORM_KERNELS",
    converter="tweenstream.export.norm:convert_rms_norm", oracle="norm", example=_rms_example,
))
