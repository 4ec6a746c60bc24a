"""Oracle of the adaptive optimiser steps (Adam, AdaGrad), float64, from PyTorch's documentation.

Written the obvious way from the algorithms in the docs of ``torch.optim.Adam`` (no weight
decay, no amsgrad, not maximising) and ``torch.optim.Adagrad`` (lr_decay 0, weight decay 0,
initial accumulator 0). Nothing is shared with ``tweenstream.runtime``.

Shapes: every array is (n,): parameters ``w``, gradient ``grad`` (of the loss, not the descent
direction), Adam's moments ``m`` and ``v``, AdaGrad's sum of squares ``s``. ``t`` is the
1-based step number. Each function returns new arrays and mutates nothing.
"""

from __future__ import annotations

import numpy as np


def adam_step(w: np.ndarray, m: np.ndarray, v: np.ndarray, grad: np.ndarray, t: int,
              lr: float, beta1: float, beta2: float, eps: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step; returns (w, m, v) after it.

    Examples
    --------
    >>> w, m, v = adam_step(np.zeros(2), np.zeros(2), np.zeros(2), np.array([1.0, -2.0]), 1,
    ...                     0.1, 0.9, 0.999, 1e-8)
    >>> np.round(w, 6).tolist()  # the first step moves each weight by lr against the gradient
    [-0.1, 0.1]
    """
    grad = np.asarray(grad, dtype=np.float64)
    m = beta1 * np.asarray(m, dtype=np.float64) + (1.0 - beta1) * grad
    v = beta2 * np.asarray(v, dtype=np.float64) + (1.0 - beta2) * grad * grad
    m_hat = m / (1.0 - beta1 ** t)
    v_hat = v / (1.0 - beta2 ** t)
    w = np.asarray(w, dtype=np.float64) - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w, m, v


def adagrad_step(w: np.ndarray, s: np.ndarray, grad: np.ndarray, lr: float, eps: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One AdaGrad step; returns (w, s) after it.

    Examples
    --------
    >>> w, s = adagrad_step(np.zeros(2), np.zeros(2), np.array([3.0, -4.0]), 0.5, 1e-8)
    >>> np.round(w, 6).tolist(), s.tolist()
    ([-0.5, 0.5], [9.0, 16.0])
    """
    grad = np.asarray(grad, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64) + grad * grad
    w = np.asarray(w, dtype=np.float64) - lr * grad / (np.sqrt(s) + eps)
    return w, s
