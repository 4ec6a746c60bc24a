"""Activation functions by name: their integer codes and the ranges tween targets are clamped to.

The maths of each activation lives in ``runtime/activations.py`` (compiled); this module only
names them, so that specs can be validated without importing numba.
"""

from __future__ import annotations

import math

# Codes are part of the saved format: never renumber, only append.
ACTIVATION_CODES: dict[str, int] = {
    "linear": 0,
    "relu": 1,
    "leaky_relu": 2,
    "tanh": 3,
    "sigmoid": 4,
    "gelu": 5,  # tanh approximation (Hendrycks & Gimpel), as in GPT-2
    "silu": 6,
    "sine": 7,
    "softmax": 8,  # output layer of a classifier only; the layer itself is linear
}
ALIASES: dict[str, str] = {"swish": "silu", "identity": "linear", "sin": "sine"}

LEAKY_SLOPE = 0.01

# Range of the tween target t = clamp(a + s*g) per activation (TWEENING.md, "Targets").
# tanh, sigmoid and relu are Loom's; the others are ours: sine is bounded, leaky_relu gets
# Loom's chain-rule [-10, 10], and unbounded smooth activations are not clamped.
_INF = math.inf
TARGET_RANGE: dict[str, tuple[float, float]] = {
    "linear": (-_INF, _INF),
    "relu": (0.0, 10.0),
    "leaky_relu": (-10.0, 10.0),
    "tanh": (-0.95, 0.95),
    "sigmoid": (0.05, 0.95),
    "gelu": (-_INF, _INF),
    "silu": (-_INF, _INF),
    "sine": (-1.0, 1.0),
    "softmax": (-_INF, _INF),
}

#: Activations whose natural initialiser is He (the rest use Xavier).
RELU_FAMILY = frozenset({"relu", "leaky_relu", "gelu", "silu"})


def canonical_activation(name: object, where: str = "activation") -> str:
    """Return the canonical name of an activation, or raise a precise error.

    Examples
    --------
    >>> canonical_activation("swish")
    'silu'
    >>> canonical_activation("Tanh")
    'tanh'
    """
    if not isinstance(name, str):
        raise TypeError(f"{where} must be a string such as 'relu', found {type(name).__name__}")
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in ACTIVATION_CODES:
        known = ", ".join(sorted(ACTIVATION_CODES))
        raise ValueError(f"{where}: unknown activation {name!r}; use one of {known}")
    return key
