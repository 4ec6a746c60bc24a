"""A small ONNX graph builder: unique readable names, nodes and initializers.

Converters add nodes through it; names are ``<layer>/<what>``, e.g. ``dense_0/W``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tweenstream.models.activations import LEAKY_SLOPE


class Graph:
    """Collects nodes and initializers with unique names.

    Examples
    --------
    >>> g = Graph()
    >>> g.constant("dense_0/W", np.zeros((2, 3), np.float32))
    'dense_0/W'
    >>> g.node("Relu", ["x"], "dense_0/relu")
    'dense_0/relu'
    """

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self.skips: list[str] = []  # open Residual inputs, innermost last

    def _unique(self, name: str) -> str:
        if name in self._names:
            raise ValueError(f"name {name!r} is already used in the graph")
        self._names.add(name)
        return name

    def constant(self, name: str, value: np.ndarray, dtype: type = np.float32) -> str:
        """Add an initializer (float32 unless ``dtype`` says otherwise, e.g. int64 shapes)."""
        arr: np.ndarray = np.array(value, dtype=dtype, order="C")  # keeps 0-d scalars 0-d
        self.initializers.append(numpy_helper.from_array(arr, self._unique(name)))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        """Add one node with one output; returns the output's name."""
        self.nodes.append(helper.make_node(op, inputs, [self._unique(output)],
                                           name=f"{output}:{op}", **attrs))
        return output


GELU_C = float(np.sqrt(2.0 / np.pi))


def silu(g: Graph, x: str, prefix: str) -> str:
    """silu(x) = x / (1 + exp(-x)): onnxruntime's Sigmoid loses precision for negative inputs
    (0 at -20), so ``x * Sigmoid(x)`` missed the engine by up to 1.8e-4; this form stays within
    float32 rounding."""
    one = g.constant(f"{prefix}/silu_one", np.array(1.0, np.float32))
    e = g.node("Exp", [g.node("Neg", [x], f"{prefix}/silu_neg")], f"{prefix}/silu_exp")
    return g.node("Div", [x, g.node("Add", [one, e], f"{prefix}/silu_den")], f"{prefix}/silu")


def activation(g: Graph, x: str, act: str, prefix: str) -> str:
    """Nodes computing ``act(x)`` with standard opset-17 ops; returns the output name.

    gelu (tanh approximation) and silu are decomposed: their fused ops are newer than the
    pinned opset.
    """
    if act in ("linear", "softmax"):
        return x
    if act == "relu":
        return g.node("Relu", [x], f"{prefix}/relu")
    if act == "leaky_relu":
        return g.node("LeakyRelu", [x], f"{prefix}/leaky_relu", alpha=LEAKY_SLOPE)
    if act == "tanh":
        return g.node("Tanh", [x], f"{prefix}/tanh")
    if act == "sigmoid":
        return g.node("Sigmoid", [x], f"{prefix}/sigmoid")
    if act == "sine":
        return g.node("Sin", [x], f"{prefix}/sin")
    if act == "silu":
        return silu(g, x, prefix)
    if act == "gelu":  # 0.5 x (1 + tanh(c (x + k x^3)))
        x3 = g.node("Mul", [x, g.node("Mul", [x, x], f"{prefix}/gelu_x2")], f"{prefix}/gelu_x3")
        k = g.constant(f"{prefix}/gelu_k", np.array(0.044715, np.float32))
        inner = g.node("Add", [x, g.node("Mul", [x3, k], f"{prefix}/gelu_kx3")],
                       f"{prefix}/gelu_inner")
        c = g.constant(f"{prefix}/gelu_c", np.array(GELU_C, np.float32))
        t = g.node("Tanh", [g.node("Mul", [inner, c], f"{prefix}/gelu_scaled")],
                   f"{prefix}/gelu_tanh")
        one = g.constant(f"{prefix}/gelu_one", np.array(1.0, np.float32))
        half = g.constant(f"{prefix}/gelu_half", np.array(0.5, np.float32))
        hx = g.node("Mul", [x, half], f"{prefix}/gelu_halfx")
        return g.node("Mul", [hx, g.node("Add", [t, one], f"{prefix}/gelu_1pt")], f"{prefix}/gelu")
    raise ValueError(f"no ONNX form for activation {act!r}")
