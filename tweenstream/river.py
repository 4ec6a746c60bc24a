"""River estimators: a tweenstream network as a River classifier, regressor or anomaly
detector.

``MLPClassifier`` and ``MLPRegressor`` subclass River's base classes, so they go wherever a
River model goes: ``evaluate.progressive_val_score``, pipelines behind River's transformers,
``ensemble`` and ``compose`` wrappers, ``learn_many`` / ``predict_many`` on pandas frames.
Their constructor arguments are their whole configuration. The network is built on the first
sample learned: its input width is ``n_features`` slots (or, if None, twice the first sample's
features, at least 16), a dict's keys take slots as they come and go, and once every slot is
taken new keys share slots by hashing (``runtime/features.py``). A classifier has
``max_classes`` output units and learns its labels (any hashable value: bool, int, str) as they
arrive. Copies, clones and pickles are exact and go through the project's model-file format.

Examples
--------
>>> from river import datasets, evaluate, metrics, preprocessing
>>> model = preprocessing.StandardScaler() | MLPClassifier(seed=1)
>>> evaluate.progressive_val_score(datasets.Phishing(), model, metrics.Accuracy())
Accuracy: 8...%
"""

from __future__ import annotations

from typing import Any

import numpy as np
from river import anomaly, base

from tweenstream.estimators import build_learner
from tweenstream.runtime.learner import Learner

_MIN_WIDTH = 16


class _Estimator:
    """What the classifier and the regressor share: the lazily built ``Learner``."""

    layers: tuple[Any, ...] | None
    mode: str
    optimizer: str
    learning_rate: float | None
    tween_rate: float
    scaling: str
    n_features: int | None
    seed: int
    settings: dict[str, Any] | None
    learner: Learner | None

    def _setup(self, layers: Any, mode: str, optimizer: str, learning_rate: float | None,
               tween_rate: float, scaling: str, n_features: int | None, seed: int,
               settings: dict[str, Any] | None) -> None:
        """Keep the constructor's arguments as they are (River reads them back by name) and
        check them by building a learner: a bad setting fails here, not on the first sample."""
        if n_features is not None and (isinstance(n_features, bool)
                                       or not isinstance(n_features, int) or n_features < 1):
            raise ValueError(f"n_features must be a positive int or None, found {n_features!r}")
        self.layers, self.mode, self.optimizer = layers, mode, optimizer
        self.learning_rate, self.tween_rate, self.scaling = learning_rate, tween_rate, scaling
        self.n_features, self.seed, self.settings = n_features, seed, settings
        self.learner = None
        self._new_learner(n_features or _MIN_WIDTH)

    def _new_learner(self, width: int) -> Learner:
        return build_learner(self.layers, width, self._n_outputs(), self._task(), self.seed,
                             self.settings, mode=self.mode, optimizer=self.optimizer,
                             learning_rate=self.learning_rate, tween_rate=self.tween_rate,
                             scaling=self.scaling)

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _task(self) -> str:
        raise NotImplementedError

    def _learner_for(self, x: dict[Any, Any]) -> Learner:
        """The learner, built on the first sample learned."""
        if self.learner is None:
            if not isinstance(x, dict):
                raise TypeError(f"x must be a dict of features, found {type(x).__name__}")
            self.learner = self._new_learner(self.n_features or max(_MIN_WIDTH, 2 * len(x)))
        return self.learner

    def _records(self, X: Any) -> list[dict[Any, Any]]:
        """A pandas frame's rows as dicts, without missing values (River's convention)."""
        return [{k: v for k, v in row.items() if v == v}
                for row in X.to_dict(orient="records")]


class MLPClassifier(_Estimator, base.MiniBatchClassifier):
    """A tweenstream network as a River classifier (test-then-train, sample by sample).

    Parameters
    ----------
    layers
        Hidden layer specs, e.g. ``(Dense(64, "relu"), Dense(32, "tanh"))``; None: one
        ``Dense(32, "tanh")``. The output layer is added.
    mode
        ``"tween"``, ``"backprop"``, ``"tween-heuristic"`` or ``"hybrid"``.
    optimizer
        Backprop's optimiser: ``"adam"``, ``"sgd"`` or ``"adagrad"``.
    learning_rate
        Backprop's step size (None: the optimiser's default).
    tween_rate
        Tween's base rate.
    scaling
        ``"auto"`` standardises the inputs online inside the model; ``"off"`` does not.
    n_features
        Input slots; None: twice the first sample's features, at least 16.
    max_classes
        Output units: the most classes the model can learn.
    seed
        Seed of the initial weights (a model is reproducible by its seed).
    settings
        Any other ``TweenConfig`` field, e.g. ``{"diagnostics_every": 10}``.

    Examples
    --------
    >>> model = MLPClassifier(seed=0)
    >>> for x, y in [({"a": 1.0, "b": 0.0}, True), ({"a": 0.0, "b": 1.0}, False)] * 50:
    ...     model.learn_one(x, y)
    >>> model.predict_one({"a": 1.0, "b": 0.0})
    True
    >>> sorted(model.predict_proba_one({"a": 1.0, "b": 0.0}))
    [False, True]
    """

    def __init__(self, layers: tuple[Any, ...] | None = None, mode: str = "tween",
                 optimizer: str = "adam", learning_rate: float | None = None,
                 tween_rate: float = 0.3, scaling: str = "auto", n_features: int | None = None,
                 max_classes: int = 10, seed: int = 0,
                 settings: dict[str, Any] | None = None) -> None:
        if isinstance(max_classes, bool) or not isinstance(max_classes, int) or max_classes < 2:
            raise ValueError(f"max_classes must be an int >= 2, found {max_classes!r}")
        self.max_classes = max_classes
        self._setup(layers, mode, optimizer, learning_rate, tween_rate, scaling, n_features,
                    seed, settings)

    def _n_outputs(self) -> int:
        return self.max_classes

    def _task(self) -> str:
        return "classification"

    @property
    def _multiclass(self) -> bool:
        return True

    def learn_one(self, x: dict[Any, Any], y: Any) -> None:
        """Learn one sample (its prediction is scored first, inside the learner)."""
        self._learner_for(x).learn_one(x, y)

    def predict_proba_one(self, x: dict[Any, Any], **kwargs: Any) -> dict[Any, float]:
        """Probabilities of the classes seen so far (empty before the first sample)."""
        if self.learner is None:
            return {}
        return self.learner.predict_proba_one(x)

    def predict_one(self, x: dict[Any, Any], **kwargs: Any) -> Any:
        """The most probable class seen so far (None before the first sample)."""
        if self.learner is None:
            return None
        return self.learner.predict_one(x)

    def learn_many(self, X: Any, y: Any) -> None:
        """Learn the rows of a pandas frame in order, with the labels of a series."""
        rows = self._records(X)
        if rows:
            self._learner_for(rows[0]).learn_many(rows, list(y))

    def predict_proba_many(self, X: Any) -> Any:
        """A frame of class probabilities, a column per class seen (empty before any)."""
        import pandas as pd

        if self.learner is None or not self.learner.classes:
            return pd.DataFrame(index=X.index)
        return pd.DataFrame([self.learner.predict_proba_one(x) for x in self._records(X)],
                            index=X.index)

    def predict_many(self, X: Any) -> Any:
        """A series of predicted classes (None before the first sample)."""
        import pandas as pd

        if self.learner is None:
            return pd.Series([None] * len(X), index=X.index, dtype=object)
        return pd.Series([self.learner.predict_one(x) for x in self._records(X)], index=X.index)


class MLPRegressor(_Estimator, base.MiniBatchRegressor):
    """A tweenstream network as a River regressor (test-then-train, sample by sample).

    The parameters are those of ``MLPClassifier`` but ``max_classes``; the targets are
    standardised inside the model by default (``settings={"target_scaling": "off"}`` not).

    Examples
    --------
    >>> model = MLPRegressor(seed=0)
    >>> for i in range(400):
    ...     x = {"u": (i % 20) / 10.0}
    ...     model.learn_one(x, 3.0 * x["u"] + 1.0)
    >>> abs(model.predict_one({"u": 1.0}) - 4.0) < 0.5
    True
    """

    def __init__(self, layers: tuple[Any, ...] | None = None, mode: str = "tween",
                 optimizer: str = "adam", learning_rate: float | None = None,
                 tween_rate: float = 0.3, scaling: str = "auto", n_features: int | None = None,
                 seed: int = 0, settings: dict[str, Any] | None = None) -> None:
        self._setup(layers, mode, optimizer, learning_rate, tween_rate, scaling, n_features,
                    seed, settings)

    def _n_outputs(self) -> int:
        return 1

    def _task(self) -> str:
        return "regression"

    def learn_one(self, x: dict[Any, Any], y: float) -> None:
        """Learn one sample (its prediction is scored first, inside the learner)."""
        self._learner_for(x).learn_one(x, float(y))

    def predict_one(self, x: dict[Any, Any], **kwargs: Any) -> float:
        """The predicted value (0.0 before the first sample, as River's regressors)."""
        if self.learner is None:
            return 0.0
        return float(self.learner.predict_one(x))

    def learn_many(self, X: Any, y: Any) -> None:
        """Learn the rows of a pandas frame in order, with the targets of a series."""
        rows = self._records(X)
        if rows:
            self._learner_for(rows[0]).learn_many(rows, np.asarray(y, dtype=np.float64))

    def predict_many(self, X: Any) -> Any:
        """A series of predicted values."""
        import pandas as pd

        return pd.Series([self.predict_one(x) for x in self._records(X)], index=X.index,
                         dtype=np.float64)


class MLPAnomalyDetector(_Estimator, anomaly.base.AnomalyDetector):
    """An online autoencoder as a River anomaly detector: it learns to reproduce each sample
    (no labels) and scores a sample by the rank of its reconstruction error among the last
    ``window`` learned samples' (``Learner.score_one``): about 0.5 for a typical sample, near 1
    for one the model reconstructs worse than nearly all recent ones.

    ``layers`` are the encoder and decoder (default: one ``tanh`` bottleneck of a quarter of
    the input width, at least 2); the output layer, as wide as the input, is added. The other
    parameters are those of ``MLPRegressor``; the default mode is backprop.

    Examples
    --------
    >>> import random
    >>> model = MLPAnomalyDetector(seed=0)
    >>> rng = random.Random(0)
    >>> for _ in range(3000):
    ...     t = rng.gauss(0, 1)
    ...     model.learn_one({"a": t, "b": 2 * t, "c": -t})
    >>> model.score_one({"a": 1.0, "b": 2.0, "c": -1.0}) < 0.9 < \\
    ...     model.score_one({"a": 1.0, "b": -2.0, "c": 3.0})
    True
    """

    def __init__(self, layers: tuple[Any, ...] | None = None, mode: str = "backprop",
                 optimizer: str = "adam", learning_rate: float | None = None,
                 tween_rate: float = 0.3, scaling: str = "auto", n_features: int | None = None,
                 window: int = 1000, seed: int = 0,
                 settings: dict[str, Any] | None = None) -> None:
        if type(window) is not int or window < 1:
            raise ValueError(f"window must be an int >= 1, found {window!r}")
        self.window = window
        self._setup(layers, mode, optimizer, learning_rate, tween_rate, scaling, n_features,
                    seed, settings)

    def _new_learner(self, width: int) -> Learner:
        from tweenstream.models import Dense, Network

        layers = self.layers if self.layers is not None else (Dense(max(2, width // 4),
                                                                    "tanh"),)
        if not isinstance(layers, (tuple, list)):
            raise TypeError(f"layers must be a tuple of hidden layer specs such as "
                            f"(Dense(8, 'tanh'),), or None; found {type(layers).__name__}")
        network = Network(width, [*layers, Dense(width)], task="regression")
        return Learner(network, seed=self.seed, mode=self.mode, optimizer=self.optimizer,
                       learning_rate=self.learning_rate, tween_rate=self.tween_rate,
                       scaling=self.scaling, reconstruct=True, metric_window=self.window,
                       **(self.settings or {}))

    def learn_one(self, x: dict[Any, Any]) -> None:
        """Learn to reproduce ``x`` (its error before learning joins the window)."""
        self._learner_for(x).learn_one(x)

    def score_one(self, x: dict[Any, Any]) -> float:
        """The anomaly score of ``x`` in [0, 1] (0.5 before the first sample learned)."""
        if self.learner is None:
            return 0.5
        return float(self.learner.score_one(x))
