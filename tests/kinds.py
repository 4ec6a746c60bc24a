"""One small network per registered layer kind, for the suites that run over every kind."""

from __future__ import annotations

from tweenstream import Dense, Network
from tweenstream.models import (
    LSTM,
    RNN,
    AvgPool2D,
    Conv1D,
    Conv2D,
    Embedding,
    Flatten,
    LayerNorm,
    MaxPool2D,
    MultiHeadAttention,
    Residual,
    RMSNorm,
    SwiGLU,
)

#: kind name -> a classifier that contains the kind, fed (n, n_inputs) rows.
EXAMPLES = {
    "dense": Network(6, [Dense(5, "tanh"), Dense(3)]),
    "layer_norm": Network((3, 4), [LayerNorm(), Flatten(), Dense(3)]),
    "rms_norm": Network((3, 4), [RMSNorm(), Flatten(), Dense(5, "relu"), Dense(3)]),
    "flatten": Network((2, 3), [Flatten(), Dense(3)]),
    "rnn": Network((4, 3), [RNN(5, return_sequences=True), Flatten(), Dense(4, "tanh"),
                            Dense(3)]),
    "lstm": Network((3, 2), [LSTM(4, return_sequences=True), LSTM(3), Dense(3)]),
    "conv2d": Network((5, 5, 2), [Conv2D(3, 3, padding="same", activation="tanh"),
                                  Conv2D(2, 2, stride=2), Flatten(), Dense(3)]),
    "conv1d": Network((7, 2), [Conv1D(3, 3, stride=2, padding="same", activation="relu"),
                               Flatten(), Dense(3)]),
    "max_pool2d": Network((4, 4, 2), [Conv2D(2, 1), MaxPool2D(2), Flatten(), Dense(3)]),
    "avg_pool2d": Network((4, 5, 1), [AvgPool2D(2), Flatten(), Dense(3)]),
    "embedding": Network(5, [Embedding(7, 3), Flatten(), Dense(3)]),
    "swiglu": Network((2, 4), [SwiGLU(6), SwiGLU(5, out=3), Flatten(), Dense(3)]),
    "attention": Network((3, 4), [MultiHeadAttention(2), MultiHeadAttention(1, causal=True),
                                  Flatten(), Dense(3)]),
    "residual": Network(4, [Dense(5, "tanh"), Residual([Dense(5, "tanh"), Dense(5)]),
                            Residual([Residual([Dense(5, "relu")]), Dense(5)]), Dense(3)]),
}
EXAMPLES["residual_begin"] = EXAMPLES["residual_end"] = EXAMPLES["residual"]
#: kinds whose example network reads token ids, not real numbers
ID_INPUTS = {"embedding": 7}
