"""What the River and scikit-learn wrappers share: building a learner from their parameters.

Both take hidden ``layers`` (None: one ``Dense(32, "tanh")``) and add a linear output layer of
the size the data asks for; the rest of their parameters are ``TweenConfig`` settings.
"""

from __future__ import annotations

from typing import Any

from tweenstream.models import Dense, Network
from tweenstream.runtime.learner import Learner

DEFAULT_HIDDEN = (Dense(32, "tanh"),)


def build_learner(layers: Any, n_inputs: int, n_outputs: int, task: str, seed: int,
                  settings: dict[str, Any] | None, **config: Any) -> Learner:
    """A learner of ``layers`` plus ``Dense(n_outputs)``, with ``config`` and ``settings``.

    Examples
    --------
    >>> model = build_learner(None, 4, 3, "classification", 0, None, mode="backprop")
    >>> [type(layer).__name__ for layer in model.network.layers], model.config.mode
    (['Dense', 'Dense'], 'backprop')
    """
    if layers is None:
        layers = DEFAULT_HIDDEN
    elif not isinstance(layers, (tuple, list)):
        raise TypeError(f"layers must be a tuple of hidden layer specs such as "
                        f"(Dense(32, 'tanh'),), or None; found {type(layers).__name__}")
    if settings is not None and not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict of TweenConfig fields or None, found "
                        f"{type(settings).__name__}; e.g. settings={{'batch_size': 8}}")
    network = Network(n_inputs, [*layers, Dense(n_outputs)], task=task)
    return Learner(network, seed=seed, **config, **(settings or {}))
