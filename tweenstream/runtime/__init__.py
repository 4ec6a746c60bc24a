"""How a network learns: plan compiler, arena, compiled interpreter, Learner."""

from tweenstream.runtime.config import TweenConfig
from tweenstream.runtime.learner import Learner

__all__ = ["Learner", "TweenConfig"]
