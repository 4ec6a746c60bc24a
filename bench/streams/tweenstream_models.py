"""Everything the suite knows about building a tweenstream learner and feeding it River samples.

This is the one place to change when the Learner's API changes. Today's Learner takes dicts
with *string* keys, *real-number* values and a fixed key set, class labels that are ints
0..K-1, and it does no feature scaling. River's streams break the first two rules (the
synthetic generators use int keys; Phishing, Bananas and SEA have bool labels), so an
``Adapter`` rewrites each sample: keys become strings in one fixed (sorted) order, labels
become their index in the stream's class list. Values are passed on as they are (every stream
of the suite is numeric, see ``catalog.py``), unscaled.

NEW API: once the Learner hashes any dict keys and values, keeps its own label map (so that
``predict_one`` returns the user's label) and standardises its inputs, ``Adapter.__call__``
becomes ``return x, y`` and ``make_learner`` stops needing ``classes`` beyond their count (or
at all). Nothing else in ``bench/streams`` has to change: the runs compare ``predict_one``'s
answer with the adapted label, which will then be the label itself.

Shapes: one hidden layer, ``n_features -> HIDDEN (tanh) -> n_classes`` (softmax
cross-entropy) or ``-> 1`` (squared error), the same for every stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tweenstream import Dense, Learner, Network

HIDDEN = 32  # hidden units, every stream
ACTIVATION = "tanh"  # hidden activation, every stream
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
    # NEW API: the label map will live in the Learner; only len(classes) is used here.
    learner = Learner(network(n_features, task, len(classes), activation), mode=mode, seed=seed,
                      **settings)
    learner.warm()
    return learner


class Adapter:
    """Turns River's ``(x, y)`` into what today's Learner takes.

    Parameters
    ----------
    keys : sequence
        Every feature key of the stream, in the order the network's inputs take them.
    task : {"classification", "regression"}
    classes : sequence
        Class labels in index order (ignored for regression).

    Examples
    --------
    >>> adapt = Adapter([0, 1], "classification", (False, True))
    >>> adapt({1: 2.5, 0: 1}, True)
    ({'0': 1, '1': 2.5}, 1)
    >>> X, Y = adapt.matrix([({0: 1, 1: 2.5}, True), ({0: 0.5, 1: 0}, False)])
    >>> X.tolist(), Y.tolist()
    ([[1.0, 2.5], [0.5, 0.0]], [1, 0])
    """

    def __init__(self, keys: Sequence[Any], task: str, classes: Sequence[Any]) -> None:
        self.keys = tuple(keys)
        self.names = tuple(str(k) for k in self.keys)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"feature keys {self.keys} collide once written as strings")
        self.classify = task == "classification"
        self.index = {c: i for i, c in enumerate(classes)}

    def __call__(self, x: dict[Any, Any], y: Any) -> tuple[dict[str, Any], Any]:
        """One sample: a dict with string keys in the fixed order, and the label's index (or
        the target as a float)."""
        # NEW API: return x, y
        features = {name: x[key] for name, key in zip(self.names, self.keys, strict=True)}
        return features, (self.index[y] if self.classify else float(y))

    def matrix(self, samples: Sequence[tuple[dict[Any, Any], Any]]
               ) -> tuple[np.ndarray, np.ndarray]:
        """The whole stream for ``learn_many``: float32 (n, features) in key order, and int64
        label indices or float32 targets (n,)."""
        keys = self.keys
        X = np.array([[x[k] for k in keys] for x, _ in samples], dtype=np.float32)
        if self.classify:
            Y = np.array([self.index[y] for _, y in samples], dtype=np.int64)
        else:
            Y = np.array([y for _, y in samples], dtype=np.float32)
        return X.reshape(len(samples), len(keys)), Y
