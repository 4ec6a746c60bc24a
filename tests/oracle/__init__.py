"""Plain-NumPy oracles of the compiled engine, written from docs/tweening.md.

Nothing here imports ``tweenstream.runtime``: the oracle is an independent, obvious float64
implementation that the parity tests compare the engine with. ``dense`` holds one Dense layer
(forward, backward signal, targets, local errors, deltas); ``network`` holds a whole learning
step in each mode and the exact loss gradient.
"""

from . import attention, conv, dense, embedding, lstm, norm, residual, rnn, swiglu
from .dense import ACTIVATIONS, TARGET_RANGE, activation, activation_derivative
from .network import OracleLearner, backprop_gradient, depth_scale, flatten, forward, loss

#: The oracle module of every layer kind, by the kind's registered name.
ORACLES = {"dense": dense, "layer_norm": norm, "rms_norm": norm, "flatten": "identity",
           "rnn": rnn, "lstm": lstm, "conv2d": conv, "conv1d": conv, "max_pool2d": conv,
           "avg_pool2d": conv, "embedding": embedding, "swiglu": swiglu,
           "attention": attention, "residual": residual, "residual_begin": residual,
           "residual_end": residual}

__all__ = [
    "ACTIVATIONS",
    "ORACLES",
    "TARGET_RANGE",
    "OracleLearner",
    "activation",
    "activation_derivative",
    "backprop_gradient",
    "depth_scale",
    "flatten",
    "forward",
    "loss",
]
