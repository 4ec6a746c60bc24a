"""Seeded weight initialisers: Xavier (Glorot) uniform and He (Kaiming) normal.

Every initialiser takes a ``numpy.random.Generator`` so that the same seed gives the same network.
"""

from __future__ import annotations

import numpy as np

INITIALISERS = ("xavier", "he", "auto")


def xavier_uniform(rng: np.random.Generator, fan_in: int, fan_out: int,
                   shape: tuple[int, ...]) -> np.ndarray:
    """Glorot uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)), as float32.

    Examples
    --------
    >>> W = xavier_uniform(np.random.default_rng(0), 8, 4, (4, 8))
    >>> W.shape, W.dtype, bool(abs(W).max() <= (6 / 12) ** 0.5)
    ((4, 8), dtype('float32'), True)
    """
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int,
              shape: tuple[int, ...]) -> np.ndarray:
    """He normal: N(0, 2 / fan_in), as float32. ``fan_out`` is accepted for a uniform signature.

    Examples
    --------
    >>> W = he_normal(np.random.default_rng(0), 512, 512, (512, 512))
    >>> round(float(W.std()) * (512 / 2) ** 0.5, 1)
    1.0
    """
    return (rng.standard_normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def initialiser(name: str, activation: str):
    """Resolve ``"auto"`` to He for the ReLU family and Xavier otherwise.

    Examples
    --------
    >>> initialiser("auto", "relu").__name__, initialiser("auto", "tanh").__name__
    ('he_normal', 'xavier_uniform')
    """
    from tweenstream.models.activations import RELU_FAMILY

    if name == "auto":
        name = "he" if activation in RELU_FAMILY else "xavier"
    return he_normal if name == "he" else xavier_uniform
