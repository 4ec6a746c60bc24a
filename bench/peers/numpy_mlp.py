"""A plain NumPy MLP learning one sample at a time: the "plain NumPy" reference row.

tanh hidden layers, a softmax cross-entropy output and SGD on every sample. Every buffer
(activations, backward signals, gradients) is allocated once in ``__init__``; a step only calls
NumPy with ``out=`` arguments, so nothing of the network's size is allocated per sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np


class NumpyMLP:
    """An MLP with widths ``sizes`` (inputs, hidden..., classes), Glorot-uniform weights and
    zero biases, trained by per-sample SGD with learning rate ``lr``.

    >>> net = NumpyMLP((2, 4, 2), lr=0.1, seed=0)
    >>> x = np.array([0.5, -0.5], dtype=np.float32)
    >>> net.learn_one(x, 1) in (0, 1)
    True
    """

    def __init__(self, sizes: Sequence[int], *, lr: float = 0.03, seed: int = 0,
                 dtype: type = np.float32) -> None:
        rng = np.random.default_rng(seed)
        self.sizes = tuple(int(s) for s in sizes)
        self.lr = dtype(lr)
        pairs = list(pairwise(self.sizes))
        limits = [np.sqrt(6.0 / (a + b)) for a, b in pairs]
        self.W: list[np.ndarray] = [rng.uniform(-h, h, (a, b)).astype(dtype)
                                    for (a, b), h in zip(pairs, limits, strict=True)]
        self.b: list[np.ndarray] = [np.zeros(b, dtype) for _, b in pairs]
        self.gW = [np.zeros_like(w) for w in self.W]
        self.gb = [np.zeros_like(b) for b in self.b]
        self.act: list[np.ndarray] = [np.zeros(s, dtype) for s in self.sizes]  # act[0] is the input
        # dLoss/dpre-activation of each layer, and W @ delta (the signal sent below it)
        self.delta: list[np.ndarray] = [np.zeros(s, dtype) for s in self.sizes[1:]]
        self.back: list[np.ndarray] = [np.zeros(s, dtype) for s in self.sizes[:-1]]

    @property
    def params(self) -> int:
        """Number of weights and biases."""
        return sum(w.size + b.size for w, b in zip(self.W, self.b, strict=True))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of one sample (a view of an internal buffer)."""
        self.act[0][...] = x
        last = len(self.W) - 1
        for i, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            z = self.act[i + 1]
            np.dot(self.act[i], W, out=z)
            z += b
            if i < last:
                np.tanh(z, out=z)
        z -= z.max()
        np.exp(z, out=z)
        z /= z.sum()
        return z

    def gradients(self, x: np.ndarray, y: int) -> float:
        """Forward and backward pass of one sample into ``gW`` and ``gb``; returns the
        cross-entropy loss of the sample (before any update)."""
        p = self.forward(x)
        loss = -float(np.log(max(float(p[y]), 1e-45)))
        top = len(self.W) - 1
        d = self.delta[top]
        d[...] = p
        d[y] -= 1.0
        for i in range(top, -1, -1):
            d = self.delta[i]
            np.multiply(self.act[i][:, None], d[None, :], out=self.gW[i])
            self.gb[i][...] = d
            if i > 0:
                below = self.delta[i - 1]
                np.dot(self.W[i], d, out=self.back[i])
                a = self.act[i]
                np.multiply(a, a, out=below)  # tanh' = 1 - a^2, times the signal from above
                np.subtract(1.0, below, out=below)
                below *= self.back[i]
        return loss

    def step(self) -> None:
        """Apply the gradients in ``gW`` / ``gb``: SGD without momentum."""
        for W, b, gW, gb in zip(self.W, self.b, self.gW, self.gb, strict=True):
            gW *= self.lr
            W -= gW
            gb *= self.lr
            b -= gb

    def learn_one(self, x: np.ndarray, y: int) -> int:
        """Test-then-train: the class predicted before learning, then one SGD step on (x, y)."""
        self.gradients(x, y)
        predicted = int(self.act[-1].argmax())
        self.step()
        return predicted
