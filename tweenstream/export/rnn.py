"""ONNX converters of RNN and LSTM: the steps unrolled into Gather, Gemm, Add, Mul and the
gates' Tanh / Sigmoid.

Unrolling keeps to plain ops at the pinned opset and matches the engine step by step; the
standard ``RNN`` op would need its gate layout and sequence axes rearranged. The input
``[batch, T*F]`` is reshaped to ``[batch, T, F]``; the output is the last state ``[batch, H]``
or every state concatenated ``[batch, T*H]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.export.graph import Graph


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


def convert_lstm(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                 in_shape: tuple[int, ...]) -> str:
    """The LSTM unrolled: per gate Gemm(x_t, W_gate, b_gate) + Gemm(h, U_gate), then the cell."""
    W, U, b = params["W"], params["U"], params["b"]
    T, F = in_shape
    H = W.shape[0] // 4
    names = ("i", "f", "g", "o")
    w = {n: g.constant(f"{prefix}/W_{n}", W[k * H:(k + 1) * H]) for k, n in enumerate(names)}
    u = {n: g.constant(f"{prefix}/U_{n}", U[k * H:(k + 1) * H]) for k, n in enumerate(names)}
    bias = {n: g.constant(f"{prefix}/b_{n}", b[k * H:(k + 1) * H]) for k, n in enumerate(names)}
    shape = g.constant(f"{prefix}/seq_shape", np.array([0, -1, F]), np.int64)
    seq = g.node("Reshape", [x, shape], f"{prefix}/seq")
    states = []
    h = c = ""
    for t in range(T):
        idx = g.constant(f"{prefix}/t{t}", np.array(t), np.int64)
        x_t = g.node("Gather", [seq, idx], f"{prefix}/x{t}", axis=1)
        gate = {}
        for n in names:
            z = g.node("Gemm", [x_t, w[n], bias[n]], f"{prefix}/z{n}x{t}", transB=1)
            if t > 0:
                z = g.node("Add", [z, g.node("Gemm", [h, u[n]], f"{prefix}/z{n}h{t}", transB=1)],
                           f"{prefix}/z{n}{t}")
            gate[n] = g.node("Tanh" if n == "g" else "Sigmoid", [z], f"{prefix}/{n}{t}")
        ig = g.node("Mul", [gate["i"], gate["g"]], f"{prefix}/ig{t}")
        c = g.node("Add", [g.node("Mul", [gate["f"], c], f"{prefix}/fc{t}"), ig],
                   f"{prefix}/c{t}") if t > 0 else g.node("Identity", [ig], f"{prefix}/c{t}")
        h = g.node("Mul", [gate["o"], g.node("Tanh", [c], f"{prefix}/tc{t}")], f"{prefix}/h{t}")
        states.append(h)
    if spec.return_sequences:
        return g.node("Concat", states, f"{prefix}/out", axis=1)
    return h
