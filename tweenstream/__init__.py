"""tweenstream: continuous online learning of small neural networks.

Examples
--------
>>> from tweenstream import Dense, Learner, Network
>>> model = Learner(Network(4, [Dense(8, "relu"), Dense(3)]), mode="backprop")
>>> model.learn_one([0.1, 0.2, 0.3, 0.4], 2)
>>> sorted(model.predict_proba_one([0.1, 0.2, 0.3, 0.4]))
[0, 1, 2]
"""

__version__ = "0.1.0"

from tweenstream.models import Dense, Network
from tweenstream.runtime import Learner, TweenConfig
from tweenstream.runtime.persist import load, save

__all__ = ["Dense", "Learner", "Network", "TweenConfig", "__version__", "load", "save"]
