"""ONNX converter of SwiGLU: per row MatMul + Add, silu (as x / (1 + Exp(-x))), Mul, then the
down projection."""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.export.graph import Graph, silu


def convert_swiglu(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                   in_shape: tuple[int, ...]) -> str:
    d = in_shape[-1]
    rows = g.node("Reshape", [x, g.constant(f"{prefix}/rows_shape", np.array([0, -1, d]),
                                            np.int64)], f"{prefix}/rows")

    def affine(name: str, inp: str, W: np.ndarray, b: np.ndarray) -> str:
        m = g.node("MatMul", [inp, g.constant(f"{prefix}/{name}_T", W.T)], f"{prefix}/{name}_mm")
        return g.node("Add", [m, g.constant(f"{prefix}/b_{name[-1]}", b)], f"{prefix}/{name}")

    gate = affine("W_g", rows, params["W_g"], params["b_g"])
    up = affine("W_u", rows, params["W_u"], params["b_u"])
    s = g.node("Mul", [silu(g, gate, f"{prefix}/gate"), up], f"{prefix}/s")
    y = affine("W_d", s, params["W_d"], params["b_d"])
    return g.node("Reshape", [y, g.constant(f"{prefix}/flat_shape", np.array([0, -1]),
                                            np.int64)], f"{prefix}/flat")
