"""ONNX converters of LayerNorm, RMSNorm and Flatten.

Tensors stay flat ``[batch, n]`` between layers, so a norm over the last axis of ``(..., d)``
reshapes to ``[batch, R, d]``, normalises, and reshapes back. LayerNorm uses the standard
``LayerNormalization`` op (opset 17); RMSNorm is decomposed (its fused op needs opset 23).
Flatten is an ``Identity``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.export.graph import Graph
from tweenstream.models.norm import LAYER_NORM_EPS, RMS_NORM_EPS


def _rows(g: Graph, x: str, d: int, prefix: str) -> str:
    shape = g.constant(f"{prefix}/rows_shape", np.array([0, -1, d]), np.int64)
    return g.node("Reshape", [x, shape], f"{prefix}/rows")


def _flat(g: Graph, x: str, prefix: str) -> str:
    shape = g.constant(f"{prefix}/flat_shape", np.array([0, -1]), np.int64)
    return g.node("Reshape", [x, shape], f"{prefix}/out")


def convert_layer_norm(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str,
                       prefix: str, in_shape: tuple[int, ...]) -> str:
    d = params["gamma"].shape[0]
    gamma = g.constant(f"{prefix}/gamma", params["gamma"])
    beta = g.constant(f"{prefix}/beta", params["beta"])
    y = g.node("LayerNormalization", [_rows(g, x, d, prefix), gamma, beta], f"{prefix}/norm",
               axis=-1, epsilon=LAYER_NORM_EPS)
    return _flat(g, y, prefix)


def convert_rms_norm(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str,
                     prefix: str, in_shape: tuple[int, ...]) -> str:
    d = params["gamma"].shape[0]
    rows = _rows(g, x, d, prefix)
    mean_sq = g.node("ReduceMean", [g.node("Mul", [rows, rows], f"{prefix}/sq")],
                     f"{prefix}/mean_sq", axes=[-1], keepdims=1)
    eps = g.constant(f"{prefix}/eps", np.array(RMS_NORM_EPS, np.float32))
    rms = g.node("Sqrt", [g.node("Add", [mean_sq, eps], f"{prefix}/mean_sq_eps")],
                 f"{prefix}/rms")
    gamma = g.constant(f"{prefix}/gamma", params["gamma"])
    y = g.node("Mul", [g.node("Div", [rows, rms], f"{prefix}/xhat"), gamma], f"{prefix}/norm")
    return _flat(g, y, prefix)


def convert_flatten(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str,
                    prefix: str, in_shape: tuple[int, ...]) -> str:
    return g.node("Identity", [x], f"{prefix}/out")
