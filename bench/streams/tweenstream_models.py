"""Everything the suite knows about building a tweenstream learner and feeding it River samples.

River's samples go to the Learner as they are: dicts with River's keys (str, or int for the
synthetic generators), numeric values, and River's labels (bool, int or str). The Learner keeps
its own feature slots, standardisation and label map (docs/inputs.md).

For ``learn_many`` the whole stream is one float64 array whose column j holds the feature that
takes slot j in the dict path (the slots are a pure function of the keys in stream order), so
both ways learn bit-identical models.

Shapes: one hidden layer, ``n_features -> HIDDEN (relu) -> n_classes`` (softmax
cross-entropy) or ``-> 1`` (squared error), the same for every stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tweenstream import Dense, Learner, Network
from tweenstream.runtime.features import FeatureSlots

HIDDEN = 32  # hidden units, every stream
ACTIVATION = "relu"  # hidden activation, every stream: the sweep's best in every mode
SEED = 42  # weight initialisation
MODES = ("tween", "backprop", "hybrid", "tween-heuristic")


def network(n_features: int, task: str, n_classes: int,
            activation: str = ACTIVATION) -> Network:
    """The suite's network: one hidden layer of ``HIDDEN`` units.

    Examples
    --------
    >>> network(3, "classification", 2).param_count, network(3, "regression", 0).n_outputs
    (194, 1)
    """
    if task == "classification":
        return Network(n_features, [Dense(HIDDEN, activation), Dense(n_classes)])
    return Network(n_features, [Dense(HIDDEN, activation), Dense(1)], task="regression")


def make_learner(n_features: int, task: str, classes: Sequence[Any], mode: str, *,
                 activation: str = ACTIVATION, seed: int = SEED,
                 **settings: Any) -> Learner:
    """A fresh learner with library defaults, except ``mode`` and any ``settings``.

    ``settings`` are ``TweenConfig`` fields; an unknown one raises ``TypeError`` (the sweep
    reports such a config as "not available"). Kernels are compiled (or loaded) here, so that
    no timed loop pays for them.

    Examples
    --------
    >>> model = make_learner(2, "classification", (False, True), "backprop")
    >>> model.config.mode, model.state()["samples_seen"]
    ('backprop', 0)
    """
    learner = Learner(network(n_features, task, len(classes), activation), mode=mode, seed=seed,
                      **settings)
    learner.warm()
    return learner


class Adapter:
    """River's ``(x, y)`` for the Learner: one sample as it is; the whole stream as an array.

    Parameters
    ----------
    keys : sequence
        Every feature key of the stream.
    task : {"classification", "regression"}
    classes : sequence
        Class labels (unused: the Learner maps labels itself).

    Examples
    --------
    >>> adapt = Adapter([0, 1], "classification", (False, True))
    >>> adapt({1: 2.5, 0: 1}, True)
    ({1: 2.5, 0: 1}, True)
    >>> X, Y = adapt.matrix([({0: 1, 1: 2.5}, True), ({0: 0.5, 1: 0}, False)])
    >>> X.shape, Y
    ((2, 2), [True, False])
    """

    def __init__(self, keys: Sequence[Any], task: str, classes: Sequence[Any]) -> None:
        self.keys = tuple(keys)
        self.classify = task == "classification"

    def __call__(self, x: dict[Any, Any], y: Any) -> tuple[dict[Any, Any], Any]:
        """One sample, as River gives it."""
        return x, y

    def matrix(self, samples: Sequence[tuple[dict[Any, Any], Any]]
               ) -> tuple[np.ndarray, Any]:
        """The whole stream for ``learn_many``: float64 (n, features), column j the feature
        of slot j, and the labels as a list (or float32 targets)."""
        slots = FeatureSlots(len(self.keys))
        raw = np.zeros(len(self.keys))
        for x, _ in samples:
            slots.commit(slots.read(x, raw))
        order = sorted(self.keys, key=lambda k: slots.slots[k])
        X = np.array([[x[k] for k in order] for x, _ in samples], dtype=np.float64)
        if self.classify:
            return X.reshape(len(samples), len(order)), [y for _, y in samples]
        Y = np.array([y for _, y in samples], dtype=np.float32)
        return X.reshape(len(samples), len(order)), Y
