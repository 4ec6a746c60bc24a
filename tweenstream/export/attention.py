"""ONNX converter of MultiHeadAttention, decomposed into MatMul, Transpose, Softmax and Add
(the fused attention op is newer than the pinned opset). A causal mask adds -1e9 above the
diagonal, which softmax turns into exact zeros, as in the engine."""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.export.graph import Graph


def convert_attention(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                      in_shape: tuple[int, ...]) -> str:
    T, d = in_shape
    H = spec.heads
    dk = d // H
    seq = g.node("Reshape", [x, g.constant(f"{prefix}/seq_shape", np.array([0, T, d]),
                                           np.int64)], f"{prefix}/seq")
    heads_shape = g.constant(f"{prefix}/heads_shape", np.array([0, T, H, dk]), np.int64)

    def project(n: str, inp: str) -> str:
        m = g.node("MatMul", [inp, g.constant(f"{prefix}/W_{n}_T", params[f"W_{n}"].T)],
                   f"{prefix}/{n}_mm")
        return g.node("Add", [m, g.constant(f"{prefix}/b_{n}", params[f"b_{n}"])],
                      f"{prefix}/{n}")

    def split(n: str) -> str:
        r = g.node("Reshape", [project(n, seq), heads_shape], f"{prefix}/{n}_heads")
        return g.node("Transpose", [r], f"{prefix}/{n}_bhtk", perm=[0, 2, 1, 3])

    q, k, v = split("q"), split("k"), split("v")
    kt = g.node("Transpose", [k], f"{prefix}/k_bhkt", perm=[0, 1, 3, 2])
    scores = g.node("Mul", [g.node("MatMul", [q, kt], f"{prefix}/qk"),
                            g.constant(f"{prefix}/scale", np.array(1.0 / np.sqrt(dk)))],
                    f"{prefix}/scores")
    if spec.causal:
        mask = np.triu(np.full((T, T), -1e9, np.float32), k=1)
        scores = g.node("Add", [scores, g.constant(f"{prefix}/mask", mask)], f"{prefix}/masked")
    weights = g.node("Softmax", [scores], f"{prefix}/weights", axis=-1)
    ctx = g.node("Transpose", [g.node("MatMul", [weights, v], f"{prefix}/ctx_bhtk")],
                 f"{prefix}/ctx_bthk", perm=[0, 2, 1, 3])
    ctx = g.node("Reshape", [ctx, g.constant(f"{prefix}/ctx_shape", np.array([0, T, d]),
                                             np.int64)], f"{prefix}/ctx")
    out = project("o", ctx)
    return g.node("Reshape", [out, g.constant(f"{prefix}/flat_shape", np.array([0, -1]),
                                              np.int64)], f"{prefix}/flat")
