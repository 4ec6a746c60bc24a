"""Compiled activation functions and their derivatives, dispatched on activation code.

Derivatives are taken from the stored pre-activation z (TWEENING.md), never approximated from
the output. Codes are those of ``tweenstream.models.activations.ACTIVATION_CODES``.
"""

import numpy as np

from tweenstream.runtime.numba_config import kernel

_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_LEAK = np.float32(0.01)
_GELU_C = np.float32(0.7978845608028654)  # sqrt(2 / pi)
_GELU_K = np.float32(0.044715)


@kernel
def act(z, code):
    """a = f(z) for one float32 value."""
    if code == 1:
        return z if z > 0 else np.float32(0.0)
    if code == 2:
        return z if z > 0 else _LEAK * z
    if code == 3:
        return np.tanh(z)
    if code == 4:
        return _ONE / (_ONE + np.exp(-z))
    if code == 5:
        return _HALF * z * (_ONE + np.tanh(_GELU_C * (z + _GELU_K * z * z * z)))
    if code == 6:
        return z / (_ONE + np.exp(-z))
    if code == 7:
        return np.sin(z)
    return z  # linear, and softmax (applied by the loss, not by the layer)


@kernel
def dact(z, a, code):
    """df/dz at z for one float32 value; ``a`` is f(z), reused where it is cheaper."""
    if code == 1:
        return _ONE if z > 0 else np.float32(0.0)
    if code == 2:
        return _ONE if z > 0 else _LEAK
    if code == 3:
        return _ONE - a * a
    if code == 4:
        return a * (_ONE - a)
    if code == 5:
        t = np.tanh(_GELU_C * (z + _GELU_K * z * z * z))
        dt = _GELU_C * (_ONE + np.float32(3.0) * _GELU_K * z * z)
        return _HALF * (_ONE + t) + _HALF * z * (_ONE - t * t) * dt
    if code == 6:
        s = _ONE / (_ONE + np.exp(-z))
        return s * (_ONE + z * (_ONE - s))
    if code == 7:
        return np.cos(z)
    return _ONE
