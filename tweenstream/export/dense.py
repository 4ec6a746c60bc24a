"""ONNX converter of Dense: ``Gemm(x, W, b, transB=1)`` then the activation's nodes."""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.export.graph import Graph, activation


def convert_dense(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                  in_shape: tuple[int, ...]) -> str:
    """W is (n_out, n_in) as in the engine, so Gemm transposes it: z = x W^T + b."""
    W = g.constant(f"{prefix}/W", params["W"])
    b = g.constant(f"{prefix}/b", params["b"])
    z = g.node("Gemm", [x, W, b], f"{prefix}/z", transB=1)
    return activation(g, z, spec.activation, prefix)
