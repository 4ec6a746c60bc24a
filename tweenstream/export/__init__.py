"""ONNX export: one converter per layer kind, the model builder, and parity checks.

``tweenstream.export.format`` (onnx and numpy only) is shared with the edge predictor; the rest
needs the compiled engine and is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {"export": "tweenstream.export.builder", "build_model": "tweenstream.export.builder",
            "ExportError": "tweenstream.export.builder"}
__all__ = ["ExportError", "build_model", "export"]

if TYPE_CHECKING:
    from tweenstream.export.builder import ExportError, build_model, export


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tweenstream.export' has no attribute {name!r}")
