"""tweenstream: continuous online learning of small neural networks.

Names are imported on first use, so that ``tweenstream.edge`` (onnxruntime only) never loads
the compiled engine.

Examples
--------
>>> from tweenstream import Dense, Learner, Network
>>> model = Learner(Network(4, [Dense(8, "relu"), Dense(3)]), mode="backprop")
>>> model.learn_one([0.1, 0.2, 0.3, 0.4], 2)
>>> model.learn_one({"temp": 21.5, "room": "hall"}, 0)  # dicts: keys that come and go
>>> sorted(model.predict_proba_one([0.1, 0.2, 0.3, 0.4]))  # the classes seen so far
[0, 2]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# every layer kind, then the rest of the public API
LAYERS = ("AvgPool2D", "Conv1D", "Conv2D", "Dense", "Embedding", "Flatten", "LSTM", "LayerNorm",
          "MaxPool2D", "MultiHeadAttention", "RMSNorm", "RNN", "RepeatVector", "Residual", "SwiGLU",
          "TimeDense")
_EXPORTS = {
    **{name: "tweenstream.models" for name in LAYERS},
    "Network": "tweenstream.models",
    "Learner": "tweenstream.runtime",
    "TweenConfig": "tweenstream.runtime",
    "load": "tweenstream.runtime.persist",
    "save": "tweenstream.runtime.persist",
    "ModelFileError": "tweenstream.runtime.persist",
    "compile_kinds": "tweenstream.runtime.warmup",
}
__all__ = ["LSTM", "RNN", "AvgPool2D", "Conv1D", "Conv2D", "Dense", "Embedding", "Flatten",
           "LayerNorm", "Learner", "MaxPool2D", "ModelFileError", "MultiHeadAttention", "Network",
           "RMSNorm", "RepeatVector", "Residual", "SwiGLU", "TimeDense", "TweenConfig",
           "__version__", "compile_kinds", "load", "save"]

if TYPE_CHECKING:
    from tweenstream.models import (
        LSTM,
        RNN,
        AvgPool2D,
        Conv1D,
        Conv2D,
        Dense,
        Embedding,
        Flatten,
        LayerNorm,
        MaxPool2D,
        MultiHeadAttention,
        Network,
        RepeatVector,
        Residual,
        RMSNorm,
        SwiGLU,
        TimeDense,
    )
    from tweenstream.runtime import Learner, TweenConfig
    from tweenstream.runtime.persist import ModelFileError, load, save
    from tweenstream.runtime.warmup import compile_kinds


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tweenstream' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
