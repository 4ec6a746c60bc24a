"""Plain-NumPy oracles of the compiled engine, written from docs/tweening.md.

Nothing here imports ``tweenstream.runtime``: the oracle is an independent, obvious float64
implementation that the parity tests compare the engine with. ``dense`` holds one Dense layer
(forward, backward signal, targets, local errors, deltas); ``network`` holds a whole learning
step in each mode and the exact loss gradient.
"""

import importlib

from .dense import ACTIVATIONS, TARGET_RANGE, activation, activation_derivative
from .network import OracleLearner, backprop_gradient, depth_scale, flatten, forward, loss


def oracle_of(kind):
    """The oracle module a registered kind names (``LayerKind.oracle``), e.g. ``oracle.dense``."""
    if kind.oracle is None:
        raise LookupError(f"layer kind {kind.name!r} names no oracle")
    return importlib.import_module(f"{__name__}.{kind.oracle}")


__all__ = [
    "ACTIVATIONS",
    "TARGET_RANGE",
    "OracleLearner",
    "activation",
    "activation_derivative",
    "backprop_gradient",
    "depth_scale",
    "flatten",
    "forward",
    "loss",
    "oracle_of",
]
