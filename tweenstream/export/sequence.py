"""ONNX converters of TimeDense and RepeatVector, on the flat ``[batch, steps * d]`` tensors
every converter passes on: TimeDense reshapes to one row per step around a ``Gemm``; RepeatVector
concatenates ``steps`` copies of its input."""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.export.graph import Graph, activation


def convert_time_dense(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                       in_shape: tuple[int, ...]) -> str:
    """Rows (batch * steps, d), then z = x W^T + b as Dense's, then back to (batch, steps *
    units)."""
    steps, d = in_shape
    rows = g.node("Reshape", [x, g.constant(f"{prefix}/rows", np.array([-1, d]), np.int64)],
                  f"{prefix}/per_step")
    W = g.constant(f"{prefix}/W", params["W"])
    b = g.constant(f"{prefix}/b", params["b"])
    z = g.node("Gemm", [rows, W, b], f"{prefix}/z", transB=1)
    a = activation(g, z, spec.activation, prefix)
    flat = g.constant(f"{prefix}/flat", np.array([-1, steps * spec.units]), np.int64)
    return g.node("Reshape", [a, flat], f"{prefix}/out")


def convert_repeat_vector(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str,
                          prefix: str, in_shape: tuple[int, ...]) -> str:
    """[v, v, ..., v] along the feature axis: step t holds v."""
    return g.node("Concat", [x] * spec.steps, f"{prefix}/repeat", axis=1)
