"""Compiled activation functions and their derivatives, over vectors, by activation code.

Derivatives are taken from the stored pre-activation z (TWEENING.md), never approximated from
the output. Codes are those of ``tweenstream.models.activations.ACTIVATION_CODES``. Each code
has its own loop so that LLVM can vectorise it.

tanh uses ``fast_tanh``: a rational function
z P(z²) / Q(z²) fitted by us (iteratively reweighted least squares on Chebyshev nodes of
[0, 9]), with Q >= 1 so it has no poles, evaluated in float64. Its error is below 6e-8 absolute
(float32 libm: 6e-8), and unlike a libm call it vectorises: several times faster per element. gelu
keeps libm's tanh: its derivative multiplies the error of tanh by ~z³ (5e-6 at z = 7); sigmoid
and silu use libm's exp: through (1 + tanh(z/2)) / 2 they lost relative accuracy in the
negative tail (sigmoid(-15) was 17% high).
"""

import numpy as np

from tweenstream.runtime.numba_config import kernel

_F = np.float32
_HALF = _F(0.5)
_ONE = _F(1.0)
_LEAK = _F(0.01)
_GELU_C = _F(0.7978845608028654)  # sqrt(2 / pi)
_GELU_K = _F(0.044715)
_CLIP = _F(9.0)
_D = np.float64
_P0, _P1, _P2, _P3 = _D(1.0), _D(0.1308087855577469), _D(0.0031005199998617172), _D(
    1.1119998816866428e-05)
_P4, _P5, _P6 = _D(-2.009552524384617e-08), _D(5.220458787480453e-11), _D(-8.353157710883422e-14)
_Q1, _Q2, _Q3 = _D(0.4641420245170593), _D(0.02448132634162903), _D(0.00025412385002709925)


@kernel
def fast_tanh(z):
    """tanh of one float32 value, to 6e-8 absolute, exactly +-1 for |z| >= 9; vectorisable.

    Evaluated in float64: the rational function is accurate to 1.8e-8, but float32 Horner
    steps added up to 3.3e-7, which showed as 1.2e-5 between the engine and onnxruntime on a
    trained 64-128-128-10 network (the export tolerance is 1e-5).
    """
    x = _D(min(max(z, -_CLIP), _CLIP))
    x2 = x * x
    p = ((((((_P6 * x2 + _P5) * x2 + _P4) * x2 + _P3) * x2 + _P2) * x2 + _P1) * x2 + _P0)
    q = ((_Q3 * x2 + _Q2) * x2 + _Q1) * x2 + _D(1.0)
    t = _F(min(max(x * p / q, _D(-1.0)), _D(1.0)))
    # saturate exactly, as correctly rounded float32 tanh does beyond |z| ~ 9.01: gelu and silu
    # multiply any residual by z
    return t if abs(z) < _CLIP else (_ONE if z > 0 else -_ONE)


@kernel
def activate(z, a, code):
    """a = f(z) elementwise; z, a (n,) float32."""
    n = z.shape[0]
    if code == 1:
        for j in range(n):
            a[j] = max(z[j], _F(0.0))
    elif code == 2:
        for j in range(n):
            a[j] = z[j] if z[j] > 0 else _LEAK * z[j]
    elif code == 3:
        for j in range(n):
            a[j] = fast_tanh(z[j])
    elif code == 4:
        for j in range(n):
            a[j] = _ONE / (_ONE + np.exp(-z[j]))
    elif code == 5:
        for j in range(n):
            x = z[j]
            a[j] = _HALF * x * (_ONE + np.tanh(_GELU_C * (x + _GELU_K * x * x * x)))
    elif code == 6:
        for j in range(n):
            a[j] = z[j] / (_ONE + np.exp(-z[j]))
    elif code == 7:
        for j in range(n):
            a[j] = np.sin(z[j])
    else:  # linear, and softmax (applied by the loss, not by the layer)
        for j in range(n):
            a[j] = z[j]


@kernel
def times_derivative(src, z, a, out, code):
    """out = src * f'(z) elementwise; ``a`` = f(z) is reused where cheaper. All (n,) float32."""
    n = z.shape[0]
    if code == 1:
        for j in range(n):
            out[j] = src[j] if z[j] > 0 else _F(0.0)
    elif code == 2:
        for j in range(n):
            out[j] = src[j] if z[j] > 0 else _LEAK * src[j]
    elif code == 3:
        for j in range(n):
            out[j] = src[j] * (_ONE - a[j] * a[j])
    elif code == 4:
        for j in range(n):
            out[j] = src[j] * a[j] * (_ONE - a[j])
    elif code == 5:
        for j in range(n):
            x = z[j]
            t = np.tanh(_GELU_C * (x + _GELU_K * x * x * x))
            dt = _GELU_C * (_ONE + _F(3.0) * _GELU_K * x * x)
            out[j] = src[j] * (_HALF * (_ONE + t) + _HALF * x * (_ONE - t * t) * dt)
    elif code == 6:
        for j in range(n):
            s = _ONE / (_ONE + np.exp(-z[j]))
            out[j] = src[j] * s * (_ONE + z[j] * (_ONE - s))
    elif code == 7:
        for j in range(n):
            out[j] = src[j] * np.cos(z[j])
    else:
        for j in range(n):
            out[j] = src[j]
