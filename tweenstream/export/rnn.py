"""ONNX converter of RNN: the steps unrolled into Gather, Gemm, Add and Tanh.

Unrolling keeps to plain ops at the pinned opset and matches the engine step by step; the
standard ``RNN`` op would need its gate layout and sequence axes rearranged. The input
``[batch, T*F]`` is reshaped to ``[batch, T, F]``; the output is the last state ``[batch, H]``
or every state concatenated ``[batch, T*H]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.export.graph import Graph
from tweenstream.export.registry import register_converter


def convert_rnn(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                in_shape: tuple[int, ...]) -> str:
    W_x, W_h, b = params["W_x"], params["W_h"], params["b"]
    T, F = in_shape
    wx = g.constant(f"{prefix}/W_x", W_x)
    wh = g.constant(f"{prefix}/W_h", W_h)
    bias = g.constant(f"{prefix}/b", b)
    shape = g.constant(f"{prefix}/seq_shape", np.array([0, -1, F]), np.int64)
    seq = g.node("Reshape", [x, shape], f"{prefix}/seq")
    states = []
    h = ""
    for t in range(T):
        idx = g.constant(f"{prefix}/t{t}", np.array(t), np.int64)
        x_t = g.node("Gather", [seq, idx], f"{prefix}/x{t}", axis=1)
        z = g.node("Gemm", [x_t, wx, bias], f"{prefix}/zx{t}", transB=1)
        if t > 0:
            z = g.node("Add", [z, g.node("Gemm", [h, wh], f"{prefix}/zh{t}", transB=1)],
                       f"{prefix}/z{t}")
        h = g.node("Tanh", [z], f"{prefix}/h{t}")
        states.append(h)
    if spec.return_sequences:
        return g.node("Concat", states, f"{prefix}/out", axis=1)
    return h


register_converter("rnn", convert_rnn)
