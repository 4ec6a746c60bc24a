"""scikit-learn estimators: a tweenstream network as a scikit-learn classifier or regressor.

``TweenClassifier`` and ``TweenRegressor`` follow scikit-learn's estimator API, so they go
where a scikit-learn model goes: ``Pipeline``, ``GridSearchCV``, ``cross_val_score``,
``clone`` and pickling. Their constructor arguments are their whole configuration. ``fit``
builds the network (the hidden ``layers``, then one linear output unit per class or target),
then learns ``max_iter`` epochs over the data with a fresh ``Learner``; ``partial_fit`` learns
one pass over a batch, in the order given, and continues the same learner. The fitted learner
is ``learner_`` (its ``state()`` has the running metrics and diagnostics).

Examples
--------
>>> import numpy as np
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> X = np.random.default_rng(0).normal(size=(300, 2))
>>> y = np.where(X[:, 0] > X[:, 1], "up", "down")
>>> model = make_pipeline(StandardScaler(), TweenClassifier(max_iter=10, random_state=0))
>>> model.fit(X, y).score(X, y) > 0.9
True
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from tweenstream.estimators import build_learner
from tweenstream.runtime.learner import Learner

_DTYPES = (np.float64, np.float32)  # what X is kept as (anything else becomes float64)
_OWN = ("mode", "optimizer", "learning_rate", "tween_rate", "scaling")  # settings with a param


class _TweenEstimator(BaseEstimator):
    """What both estimators share: their parameters and the building of the ``Learner``."""

    _task = ""  # the Network's task, set by each estimator

    def __init__(self, layers: Any = None, *, mode: str = "tween", optimizer: str = "adam",
                 learning_rate: float | None = None, tween_rate: float = 0.3,
                 scaling: str = "auto", max_iter: int = 50, shuffle: bool = True,
                 settings: dict[str, Any] | None = None, random_state: int | None = None
                 ) -> None:
        self.layers = layers
        self.mode = mode
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.tween_rate = tween_rate
        self.scaling = scaling
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.settings = settings
        self.random_state = random_state

    def _seed(self) -> int:
        """``random_state`` as the Learner's seed (None: 0, so fits are reproducible)."""
        rs = self.random_state
        if rs is None:
            return 0
        if isinstance(rs, bool) or not isinstance(rs, Integral):
            raise TypeError(f"random_state must be a non-negative int or None, found "
                            f"{type(rs).__name__}; pass an int seed such as random_state=0")
        if rs < 0:
            raise ValueError(f"random_state must be a non-negative int or None, found {rs}")
        return int(rs)

    def _new_learner(self, n_features: int, n_outputs: int) -> Learner:
        """A fresh Learner of the hidden layers plus ``n_outputs`` linear output units."""
        settings = self.settings
        clash = sorted(set(settings or {}) & {*_OWN, "seed"}) if isinstance(settings, dict) \
            else []
        if clash:
            raise ValueError(f"settings holds {clash}, which are constructor arguments of "
                             f"{type(self).__name__} (seed: random_state); pass them there")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, Integral):
            raise TypeError(f"max_iter must be an int, found {type(self.max_iter).__name__}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1 (epochs over the data), found "
                             f"{self.max_iter}")
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, found {self.shuffle!r}")
        return build_learner(self.layers, n_features, n_outputs, self._task, self._seed(),
                             settings, mode=self.mode, optimizer=self.optimizer,
                             learning_rate=self.learning_rate, tween_rate=self.tween_rate,
                             scaling=self.scaling)

    def _epochs(self, X: np.ndarray, Y: np.ndarray) -> None:
        """``max_iter`` passes of ``learner_`` over (X, Y), each in a new random order when
        ``shuffle`` (a ``numpy.random.default_rng`` seeded by ``random_state``)."""
        rng = np.random.default_rng(self._seed())
        for _ in range(self.max_iter):
            if self.shuffle:
                order = rng.permutation(X.shape[0])
                self.learner_.learn_many(X[order], Y[order])
            else:
                self.learner_.learn_many(X, Y)
        self.n_iter_ = int(self.max_iter)


class TweenClassifier(ClassifierMixin, _TweenEstimator):
    """A tweenstream network as a scikit-learn classifier (softmax over one unit per class).

    Parameters
    ----------
    layers : tuple of layer specs, optional
        The hidden layers, e.g. ``(Dense(64, "relu"), Dense(32, "tanh"))``; None means
        ``(Dense(32, "tanh"),)``. The output layer, ``Dense(n_classes)``, is added.
    mode : {"tween", "tween-heuristic", "backprop", "hybrid"}
        The learning rule (``TweenConfig.mode``).
    optimizer : {"adam", "sgd", "adagrad"}
        Backprop's optimiser (``TweenConfig.optimizer``).
    learning_rate : float, optional
        Backprop's step size; None: the optimiser's default.
    tween_rate : float
        Tween's base rate.
    scaling : {"auto", "online", "off"}
        The model's own online standardisation of its inputs.
    max_iter : int
        Epochs over the data in ``fit`` (``partial_fit`` makes one pass).
    shuffle : bool
        Shuffle the samples before every epoch of ``fit``.
    settings : dict, optional
        Any other ``TweenConfig`` field, e.g. ``{"batch_size": 8, "momentum": 0.5}``.
    random_state : int, optional
        Seed of the weights and of the shuffling; None means 0 (every fit is reproducible).

    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted; ``predict_proba``'s columns follow them.
    n_features_in_ : int
        Features seen in ``fit``.
    n_iter_ : int
        Epochs learned: ``max_iter`` after ``fit``, plus one for every ``partial_fit``.
    learner_ : tweenstream.Learner
        The fitted learner; it learns the class indices into ``classes_``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    >>> model = TweenClassifier(max_iter=10, random_state=0).fit(X, y)
    >>> model.classes_.tolist(), model.score(X, y) > 0.9
    (['no', 'yes'], True)
    >>> P = model.predict_proba(X[:3])  # float64, columns in classes_ order
    >>> P.shape, np.allclose(P.sum(axis=1), 1.0)
    ((3, 2), True)
    """

    _task = "classification"

    def fit(self, X: Any, y: Any) -> TweenClassifier:
        """Learn ``max_iter`` epochs over (X, y) from a fresh network; returns self."""
        X, y = validate_data(self, X, y, dtype=_DTYPES)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        self.learner_ = self._start(X.shape[1], classes)
        self._epochs(X, codes.astype(np.int64))
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> TweenClassifier:
        """Learn one pass over (X, y), in order, continuing the fitted network.

        The first call (on an unfitted estimator) needs ``classes``, every label that may ever
        come; later calls may repeat them but not change them.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(100, 2))
        >>> y = np.where(X[:, 0] > 0, "pos", "neg")
        >>> model = TweenClassifier(random_state=0)
        >>> for rows in np.array_split(np.arange(100), 4):
        ...     model = model.partial_fit(X[rows], y[rows], classes=["neg", "pos"])
        >>> model.n_iter_, model.predict([[2.0, 0.0]]).tolist()
        (4, ['pos'])
        """
        first = not hasattr(self, "learner_")
        if first and classes is None:
            raise ValueError("the first call to partial_fit needs classes=, every class label "
                             "that may appear (e.g. classes=np.unique(y_all))")
        X, y = validate_data(self, X, y, dtype=_DTYPES, reset=first)
        check_classification_targets(y)
        known = np.unique(classes) if first else self.classes_
        if not first and classes is not None and not np.array_equal(np.unique(classes), known):
            raise ValueError(f"classes={list(np.unique(classes))} differs from the classes of "
                             f"the first call, {known.tolist()}; they cannot change")
        index = {c: i for i, c in enumerate(known.tolist())}
        codes = np.array([index.get(c, -1) for c in y.tolist()], dtype=np.int64)
        if (codes < 0).any():
            unknown = list(dict.fromkeys(c for c, i in zip(y.tolist(), codes, strict=True)
                                         if i < 0))
            raise ValueError(f"y holds labels {unknown} that are not among the classes "
                             f"{known.tolist()}; pass every class to the first partial_fit call")
        if first:
            self.learner_ = self._start(X.shape[1], known)
            self.n_iter_ = 0
        self.learner_.learn_many(X, codes)
        self.n_iter_ += 1
        return self

    def _start(self, n_features: int, classes: np.ndarray) -> Learner:
        if len(classes) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, found 1 class "
                             f"({classes.tolist()}); give it samples of every class")
        learner = self._new_learner(n_features, len(classes))
        self.classes_ = classes
        return learner

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, n_classes), float64, columns in ``classes_`` order."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_DTYPES, reset=False)
        P = self.learner_.predict_proba_many(X)[:, self._columns()].astype(np.float64)
        return P / P.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of every row of X, (n,)."""
        best = np.argmax(self.predict_proba(X), axis=1)
        return self.classes_[best]

    def _columns(self) -> np.ndarray:
        """The learner's output unit of every class of ``classes_``: the unit its index was
        given when first learned, and the units left over (in order) for those not seen yet."""
        labels = self.learner_.labels
        assert labels is not None  # a classification learner's
        units = [labels.unit_of(k) for k in range(len(self.classes_))]
        free = iter(sorted(set(range(len(units))) - set(units)))
        return np.array([u if u >= 0 else next(free) for u in units], dtype=np.intp)


class TweenRegressor(RegressorMixin, _TweenEstimator):
    """A tweenstream network as a scikit-learn regressor (one linear output per target).

    Takes the parameters of ``TweenClassifier``; the output layer is ``Dense(n_targets)``. ``y``
    may be 1-D or 2-D (several targets); predictions have its shape. Targets are standardised
    online inside the model (``TweenConfig.target_scaling``), predictions are in their units.

    Attributes
    ----------
    n_features_in_ : int
        Features seen in ``fit``.
    n_outputs_ : int
        Targets per sample.
    n_iter_ : int
        Epochs learned: ``max_iter`` after ``fit``, plus one for every ``partial_fit``.
    learner_ : tweenstream.Learner
        The fitted learner.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(-1, 1, size=(300, 3))
    >>> y = 2.0 * X[:, 0] - X[:, 1] + 5.0
    >>> model = TweenRegressor(max_iter=20, random_state=0).fit(X, y)
    >>> model.predict(X[:4]).shape, model.score(X, y) > 0.9
    ((4,), True)
    """

    _task = "regression"

    def fit(self, X: Any, y: Any) -> TweenRegressor:
        """Learn ``max_iter`` epochs over (X, y) from a fresh network; returns self."""
        X, y = validate_data(self, X, y, dtype=_DTYPES, multi_output=True, y_numeric=True)
        self.learner_ = self._start(X.shape[1], y)
        self._epochs(X, np.asarray(y, dtype=np.float64))
        return self

    def partial_fit(self, X: Any, y: Any) -> TweenRegressor:
        """Learn one pass over (X, y), in order, continuing the fitted network.

        Examples
        --------
        >>> import numpy as np
        >>> X = np.random.default_rng(0).uniform(-1, 1, size=(100, 2))
        >>> model = TweenRegressor(random_state=0)
        >>> for rows in np.array_split(np.arange(100), 4):
        ...     model = model.partial_fit(X[rows], X[rows] * [1.0, -1.0])  # two targets
        >>> model.n_iter_, model.predict(X[:5]).shape
        (4, (5, 2))
        """
        first = not hasattr(self, "learner_")
        X, y = validate_data(self, X, y, dtype=_DTYPES, multi_output=True, y_numeric=True,
                             reset=first)
        if first:
            self.learner_ = self._start(X.shape[1], y)
            self.n_iter_ = 0
        elif (1 if y.ndim == 1 else y.shape[1]) != self.n_outputs_:
            raise ValueError(f"y has {1 if y.ndim == 1 else y.shape[1]} targets, but this "
                             f"regressor learned {self.n_outputs_}; pass the same targets")
        self.learner_.learn_many(X, np.asarray(y, dtype=np.float64))
        self.n_iter_ += 1
        return self

    def _start(self, n_features: int, y: np.ndarray) -> Learner:
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        learner = self._new_learner(n_features, n_outputs)
        self.n_outputs_ = n_outputs
        self._flat = y.ndim == 1  # predictions 1-D like y
        return learner

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, float64: (n,) if ``y`` was 1-D, else (n, n_outputs)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_DTYPES, reset=False)
        out = np.asarray(self.learner_.predict_many(X), dtype=np.float64)
        return out.reshape(-1) if self._flat else out.reshape(X.shape[0], self.n_outputs_)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
