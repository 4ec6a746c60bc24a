"""The MLP shapes of the peer comparison and the seeded stream each shape learns.

Every stream is made in-process with NumPy from a seed (nothing is downloaded) and returned
whole, as float32 features and int64 class labels, so that every peer sees the same samples in
the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from tweenstream.stream.sources import drifting_quadrants, toy_set

Stream = tuple[np.ndarray, np.ndarray]
TEACHER_HIDDEN = 32  # hidden units of the fixed random network that labels the B and C streams
CALIBRATION = 4096  # inputs used once to centre the teacher's logits (balances the classes)


@dataclass(frozen=True)
class Shape:
    """An MLP shape (tanh hidden layers, softmax output) and the stream it learns."""

    name: str
    sizes: tuple[int, ...]  # inputs, hidden..., classes
    samples: int  # default number of timed samples
    stream: str  # what the stream is, for the report
    make: Callable[[int, int], Stream]  # (n, seed) -> X (n, inputs) float32, y (n,) int64

    @property
    def params(self) -> int:
        """Weights and biases of the MLP."""
        return mlp_params(self.sizes)

    @property
    def label(self) -> str:
        """The shape as ``8-32-32-4``."""
        return "-".join(str(s) for s in self.sizes)


def mlp_params(sizes: tuple[int, ...]) -> int:
    """Weights and biases of a fully connected network with layer widths ``sizes``.

    >>> mlp_params((8, 32, 32, 4))
    1476
    """
    return sum(a * b + b for a, b in pairwise(sizes))


def moons(n: int, seed: int) -> Stream:
    """Two interleaved half-moons in 2-D (``toy_set("moons")``, noise 0.1), shuffled."""
    return toy_set("moons", n, seed=seed)


def quadrants(n: int, seed: int) -> Stream:
    """The drifting quadrant stream without its switch: 8 inputs, 4 classes, 10% label noise."""
    chunks = list(drifting_quadrants(n, n_features=8, switch_at=n, noise=0.1, seed=seed))
    return (np.concatenate([c[0] for c in chunks]).astype(np.float32, copy=False),
            np.concatenate([c[1] for c in chunks]).astype(np.int64, copy=False))


def teacher_labels(X: np.ndarray, n_classes: int, teacher_seed: int) -> np.ndarray:
    """Classes of ``X`` by a fixed random tanh network ``inputs-32-n_classes``.

    The network depends on ``teacher_seed`` only. Its logits are centred on their mean over a
    calibration set drawn from the same input distribution, so no class dominates.
    """
    rng = np.random.default_rng([teacher_seed, X.shape[1], n_classes])
    # uniform[-1, 1] inputs have variance 1/3: scale so the hidden pre-activations have unit
    # variance and the tanh units are neither linear nor saturated
    W1 = rng.standard_normal((X.shape[1], TEACHER_HIDDEN)) * np.sqrt(3.0 / X.shape[1])
    b1 = 0.5 * rng.standard_normal(TEACHER_HIDDEN)
    W2 = rng.standard_normal((TEACHER_HIDDEN, n_classes)) / np.sqrt(TEACHER_HIDDEN)
    calib = rng.uniform(-1.0, 1.0, (CALIBRATION, X.shape[1]))
    centre = (np.tanh(calib @ W1 + b1) @ W2).mean(axis=0)
    return (np.tanh(X.astype(np.float64) @ W1 + b1) @ W2 - centre).argmax(axis=1)


def teacher(n_inputs: int, n_classes: int, teacher_seed: int) -> Callable[[int, int], Stream]:
    """A stream of uniform inputs in [-1, 1] labelled by ``teacher_labels``: the labelling
    network is fixed by ``teacher_seed``; the stream seed draws the inputs."""
    def make(n: int, seed: int) -> Stream:
        rng = np.random.default_rng(seed)
        X = rng.uniform(-1.0, 1.0, (n, n_inputs)).astype(np.float32)
        return X, teacher_labels(X, n_classes, teacher_seed).astype(np.int64)
    return make


TEACHER_TEXT = ("uniform inputs in [-1, 1], class = argmax of a fixed random tanh network "
                f"(in-{TEACHER_HIDDEN}-out, logits centred)")
SHAPES = {
    "toy": Shape("toy", (2, 16, 16, 2), 5_000, "two moons (noise 0.1)", moons),
    "A": Shape("A", (8, 32, 32, 4), 20_000,
               "quadrant of (x0, x1), 6 distractors, 10% label noise, no drift", quadrants),
    "B": Shape("B", (64, 128, 128, 10), 10_000, TEACHER_TEXT, teacher(64, 10, 1)),
    "C": Shape("C", (784, 256, 128, 10), 3_000, TEACHER_TEXT, teacher(784, 10, 2)),
}
