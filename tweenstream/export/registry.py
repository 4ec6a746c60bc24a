"""One ONNX converter per layer kind, found through the kind's registry entry.

A converter takes ``(graph, spec, params, x, prefix, in_shape)`` - the graph builder, the layer
spec, its parameters by name (arrays shaped as the kind declares them), the name of its input
tensor (always flat ``[batch, n]``), the prefix for its names and the layer's input shape - and
returns the name of its (flat) output tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tweenstream.export.graph import Graph
from tweenstream.models.registry import kind_named, kinds

Converter = Callable[[Graph, Any, dict[str, np.ndarray], str, str, tuple[int, ...]], str]


def converter(kind: str) -> Converter:
    """The converter a registered kind names (``LayerKind.converter``), imported on first use.

    Examples
    --------
    >>> converter("dense").__name__
    'convert_dense'
    """
    found = kind_named(kind)
    if found.converter is None:
        raise KeyError(f"layer kind {kind!r} names no ONNX converter")
    fn: Converter = found.part("converter")
    return fn


def converters() -> dict[str, Converter]:
    """The converter of every registered kind that names one, by kind name."""
    return {k.name: converter(k.name) for k in kinds() if k.converter is not None}
