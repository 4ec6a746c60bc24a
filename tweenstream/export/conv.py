"""ONNX converters of Conv1D / Conv2D and the pools: channels-last tensors are transposed to
ONNX's NCHW around a standard ``Conv`` / ``MaxPool`` / ``AveragePool``, then flattened again."""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.export.graph import Graph, activation
from tweenstream.models.conv import _geometry


def _to_nchw(g: Graph, x: str, H: int, W: int, C: int, prefix: str) -> str:
    shape = g.constant(f"{prefix}/in_shape", np.array([-1, H, W, C]), np.int64)
    nhwc = g.node("Reshape", [x, shape], f"{prefix}/nhwc")
    return g.node("Transpose", [nhwc], f"{prefix}/nchw", perm=[0, 3, 1, 2])


def _to_flat(g: Graph, y: str, prefix: str) -> str:
    nhwc = g.node("Transpose", [y], f"{prefix}/out_nhwc", perm=[0, 2, 3, 1])
    shape = g.constant(f"{prefix}/flat_shape", np.array([0, -1]), np.int64)
    return g.node("Reshape", [nhwc, shape], f"{prefix}/flat")


def convert_conv(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                 in_shape: tuple[int, ...]) -> str:
    H, W, C, kh, kw, s, pt, pl, Ho, Wo = _geometry(spec, in_shape)
    pb = max((Ho - 1) * s + kh - H - pt, 0)
    pr = max((Wo - 1) * s + kw - W - pl, 0)
    K = g.constant(f"{prefix}/W", params["W"].transpose(0, 3, 1, 2))  # F, C, kh, kw
    b = g.constant(f"{prefix}/b", params["b"])
    z = g.node("Conv", [_to_nchw(g, x, H, W, C, prefix), K, b], f"{prefix}/z",
               kernel_shape=[kh, kw], strides=[s, s], pads=[pt, pl, pb, pr])
    return activation(g, _to_flat(g, z, prefix), spec.activation, prefix)


def convert_pool(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                 in_shape: tuple[int, ...]) -> str:
    H, W, C = in_shape
    op = "AveragePool" if type(spec).__name__ == "AvgPool2D" else "MaxPool"
    y = g.node(op, [_to_nchw(g, x, H, W, C, prefix)], f"{prefix}/pool",
               kernel_shape=[spec.pool, spec.pool], strides=[spec.pool, spec.pool])
    return _to_flat(g, y, prefix)
