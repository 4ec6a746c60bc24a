"""One ONNX converter per layer kind, keyed by the kind's registered name.

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

Converter = Callable[[Graph, Any, dict[str, np.ndarray], str, str, tuple[int, ...]], str]
_CONVERTERS: dict[str, Converter] = {}


def register_converter(kind: str, converter: Converter) -> Converter:
    """Register the converter of a layer kind; refuses a second one.

    Examples
    --------
    >>> register_converter("dense", lambda *args: "")
    Traceback (most recent call last):
    ...
    ValueError: an ONNX converter for 'dense' is already registered
    """
    if kind in _CONVERTERS:
        raise ValueError(f"an ONNX converter for {kind!r} is already registered")
    _CONVERTERS[kind] = converter
    return converter


def converter(kind: str) -> Converter:
    """The converter of a kind; ``KeyError`` with the known kinds if there is none."""
    try:
        return _CONVERTERS[kind]
    except KeyError:
        raise KeyError(f"no ONNX converter for layer kind {kind!r}; known: "
                       f"{', '.join(sorted(_CONVERTERS))}") from None


def converters() -> dict[str, Converter]:
    return dict(_CONVERTERS)
