"""Conv1D, Conv2D, MaxPool2D and AvgPool2D, channels last.

Shapes: Conv2D input x (H, W, C), kernel W (filters, kh, kw, C), bias b (filters,), output
(H', W', filters) with H' = ceil(H / stride) for "same" padding or floor((H - kh) / stride) + 1
for "valid". Conv1D is the same layer on (T, C) inputs with a height of 1. Pooling takes
(H, W, C) to (H / p, W / p, C) (windows of p x p, stride p, any remainder dropped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tweenstream.models.activations import canonical_activation
from tweenstream.models.init import INITIALISERS, initialiser
from tweenstream.models.registry import LayerKind, Shape, output_positions, register

PADDINGS = ("valid", "same")


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, found {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, found {value}")
    return int(value)


@dataclass(frozen=True)
class Conv2D:
    """A 2-D convolution over (height, width, channels) inputs.

    Examples
    --------
    >>> Conv2D(8, kernel=3, padding="same", activation="relu")
    Conv2D(filters=8, kernel=3, stride=1, padding='same', activation='relu', init='auto')
    """

    filters: int
    kernel: int = 3
    stride: int = 1
    padding: str = "valid"
    activation: str = "linear"
    init: str = "auto"

    def __post_init__(self) -> None:
        kind = type(self).__name__
        for name in ("filters", "kernel", "stride"):
            object.__setattr__(self, name, _positive(f"{kind}.{name}", getattr(self, name)))
        if self.padding not in PADDINGS:
            raise ValueError(f"{kind}.padding must be 'valid' or 'same', found {self.padding!r}")
        object.__setattr__(self, "activation",
                           canonical_activation(self.activation, f"{kind}.activation"))
        if self.activation == "softmax":
            raise ValueError(f"{kind}.activation: softmax belongs on a classifier's Dense output")
        if self.init not in INITIALISERS:
            raise ValueError(f"{kind}.init must be one of {INITIALISERS}, found {self.init!r}")


@dataclass(frozen=True)
class Conv1D(Conv2D):
    """A 1-D convolution over (steps, channels) inputs (same arguments as Conv2D).

    Examples
    --------
    >>> Conv1D(4, kernel=5)
    Conv1D(filters=4, kernel=5, stride=1, padding='valid', activation='linear', init='auto')
    """


def _geometry(spec: Conv2D, in_shape: Shape) -> tuple[int, ...]:
    """(H, W, C, kh, kw, stride, pad_top, pad_left, H_out, W_out)."""
    one_d = isinstance(spec, Conv1D)
    if one_d:
        if len(in_shape) != 2:
            raise ValueError(f"Conv1D expects (steps, channels), found shape {in_shape}")
        H, W, C = 1, in_shape[0], in_shape[1]
        kh, kw = 1, spec.kernel
    else:
        if len(in_shape) != 3:
            raise ValueError(f"Conv2D expects (height, width, channels), found shape {in_shape}")
        H, W, C = in_shape
        kh = kw = spec.kernel
    s = spec.stride
    if spec.padding == "same":
        Ho, Wo = math.ceil(H / s), math.ceil(W / s)
        pt = max((Ho - 1) * s + kh - H, 0) // 2 if not one_d else 0
        pl = max((Wo - 1) * s + kw - W, 0) // 2
    else:
        if H < kh or W < kw:
            raise ValueError(f"input {in_shape} is smaller than the kernel {spec.kernel}; use "
                             "padding='same' or a smaller kernel")
        Ho, Wo = (H - kh) // s + 1, (W - kw) // s + 1
        pt = pl = 0
    return H, W, C, kh, kw, s, pt, pl, Ho, Wo


def _output_shape(spec: Conv2D, in_shape: Shape) -> Shape:
    *_, Ho, Wo = _geometry(spec, in_shape)
    return (Wo, spec.filters) if isinstance(spec, Conv1D) else (Ho, Wo, spec.filters)


def _param_shapes(spec: Conv2D, in_shape: Shape) -> list[tuple[str, Shape]]:
    _, _, C, kh, kw, *_ = _geometry(spec, in_shape)
    return [("W", (spec.filters, kh, kw, C)), ("b", (spec.filters,))]


def _init(spec: Conv2D, in_shape: Shape, rng: np.random.Generator) -> list[np.ndarray]:
    _, _, C, kh, kw, *_ = _geometry(spec, in_shape)
    fan_in, fan_out = kh * kw * C, kh * kw * spec.filters
    W = initialiser(spec.init, spec.activation)(rng, fan_in, fan_out, (spec.filters, kh, kw, C))
    return [W, np.zeros(spec.filters, np.float32)]


CONV_DIMS = ("height", "width", "channels", "kh", "kw", "stride", "pad_top", "pad_left",
             "out_height", "out_width")


def _dims(spec: Conv2D, in_shape: Shape) -> dict[str, int]:
    return dict(zip(CONV_DIMS, _geometry(spec, in_shape), strict=True))


def _conv2d_example():
    from tweenstream.models import Dense, Flatten, Network

    return Network((5, 5, 2), [Conv2D(3, 3, padding="same", activation="tanh"),
                               Conv2D(2, 2, stride=2), Flatten(), Dense(3)])


def _conv1d_example():
    from tweenstream.models import Dense, Flatten, Network

    return Network((7, 2), [Conv1D(3, 3, stride=2, padding="same", activation="relu"),
                            Flatten(), Dense(3)])


def _scratch(spec: Conv2D, in_shape: Shape) -> dict[str, int]:
    """Gradient accumulators laid out like the parameters."""
    _, _, C, kh, kw, *_ = _geometry(spec, in_shape)
    return {"grads": spec.filters * kh * kw * C + spec.filters}


CONV2D = register(LayerKind(
    name="conv2d", spec_type=Conv2D, op_code=7, type_rate=1.0, output_shape=_output_shape,
    shared_over=output_positions,
    param_shapes=_param_shapes, init=_init, plan_dims=_dims, dims=CONV_DIMS, scratch=_scratch,
    segments=("grads",), params=("W", "b"),
    kernels="tweenstream.runtime.conv:CONV_KERNELS",
    converter="tweenstream.export.conv:convert_conv", oracle="conv", example=_conv2d_example,
))
CONV1D = register(LayerKind(
    name="conv1d", spec_type=Conv1D, op_code=8, type_rate=1.0, output_shape=_output_shape,
    shared_over=output_positions,
    param_shapes=_param_shapes, init=_init, plan_dims=_dims, dims=CONV_DIMS, scratch=_scratch,
    segments=("grads",), params=("W", "b"),
    kernels="tweenstream.runtime.conv:CONV_KERNELS",
    converter="tweenstream.export.conv:convert_conv", oracle="conv", example=_conv1d_example,
))


@dataclass(frozen=True)
class MaxPool2D:
    """Max over p x p windows (stride p) of (height, width, channels) inputs.

    Examples
    --------
    >>> MaxPool2D(2)
    MaxPool2D(pool=2)
    """

    pool: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "pool", _positive(f"{type(self).__name__}.pool", self.pool))


@dataclass(frozen=True)
class AvgPool2D(MaxPool2D):
    """Mean over p x p windows (stride p) of (height, width, channels) inputs.

    Examples
    --------
    >>> AvgPool2D(2)
    AvgPool2D(pool=2)
    """


def _pool_shape(spec: MaxPool2D, in_shape: Shape) -> Shape:
    if len(in_shape) != 3:
        raise ValueError(f"{type(spec).__name__} expects (height, width, channels), found "
                         f"shape {in_shape}")
    H, W, C = in_shape
    if H < spec.pool or W < spec.pool:
        raise ValueError(f"input {in_shape} is smaller than the pool {spec.pool}")
    return (H // spec.pool, W // spec.pool, C)


POOL_DIMS = ("height", "width", "channels", "pool", "out_height", "out_width", "average")


def _pool_dims(spec: MaxPool2D, in_shape: Shape) -> dict[str, int]:
    Ho, Wo, C = _pool_shape(spec, in_shape)
    values = (in_shape[0], in_shape[1], C, spec.pool, Ho, Wo, int(isinstance(spec, AvgPool2D)))
    return dict(zip(POOL_DIMS, values, strict=True))


def _max_pool_example():
    from tweenstream.models import Dense, Flatten, Network

    return Network((4, 4, 2), [Conv2D(2, 1), MaxPool2D(2), Flatten(), Dense(3)])


def _avg_pool_example():
    from tweenstream.models import Dense, Flatten, Network

    return Network((4, 5, 1), [AvgPool2D(2), Flatten(), Dense(3)])


MAX_POOL = register(LayerKind(
    name="max_pool2d", spec_type=MaxPool2D, op_code=9, type_rate=1.0, output_shape=_pool_shape,
    param_shapes=lambda spec, s: [], init=lambda spec, s, rng: [], plan_dims=_pool_dims,
    dims=POOL_DIMS, segments=("argmax",),
    scratch=lambda spec, s: {"argmax": int(np.prod(_pool_shape(spec, s)))},
    heuristic="keep", kernels="tweenstream.runtime.conv:POOL_KERNELS",
    converter="tweenstream.export.conv:convert_pool", oracle="conv", example=_max_pool_example,
))
AVG_POOL = register(LayerKind(
    name="avg_pool2d", spec_type=AvgPool2D, op_code=10, type_rate=1.0,
    output_shape=_pool_shape, param_shapes=lambda spec, s: [], init=lambda spec, s, rng: [],
    plan_dims=_pool_dims, dims=POOL_DIMS, segments=("argmax",),
    scratch=lambda spec, s: {"argmax": 0}, heuristic="keep",
    kernels="tweenstream.runtime.conv:POOL_KERNELS",
    converter="tweenstream.export.conv:convert_pool", oracle="conv", example=_avg_pool_example,
))
