"""ONNX converter of Embedding: ``Gather`` of the table by the ids cast to int64."""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.export.graph import Graph


def convert_embedding(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                      in_shape: tuple[int, ...]) -> str:
    E = g.constant(f"{prefix}/E", params["E"])
    ids = g.node("Cast", [x], f"{prefix}/ids", to=7)  # int64
    vectors = g.node("Gather", [E, ids], f"{prefix}/vectors", axis=0)
    shape = g.constant(f"{prefix}/flat_shape", np.array([0, -1]), np.int64)
    return g.node("Reshape", [vectors, shape], f"{prefix}/flat")
