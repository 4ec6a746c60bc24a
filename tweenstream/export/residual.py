"""ONNX converters of the Residual rows: the begin row passes x on (and remembers it), the end
row adds it back. ``Residual`` itself is expanded into those rows and never converted."""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.export.graph import Graph


def convert_begin(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                  in_shape: tuple[int, ...]) -> str:
    out = g.node("Identity", [x], f"{prefix}/skip")
    g.skips.append(out)
    return out


def convert_end(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                in_shape: tuple[int, ...]) -> str:
    return g.node("Add", [x, g.skips.pop()], f"{prefix}/sum")


def convert_residual(g: Graph, spec: Any, params: dict[str, np.ndarray], x: str, prefix: str,
                     in_shape: tuple[int, ...]) -> str:
    raise ValueError("a Residual is expanded into begin and end rows before conversion")
