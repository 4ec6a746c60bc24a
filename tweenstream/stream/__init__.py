"""Where data comes from: the wire protocol, the daemon, its clients, and synthetic sources."""

from tweenstream.stream.client import Control, Producer
from tweenstream.stream.daemon import Daemon, ServeConfig
from tweenstream.stream.sources import TOY_SETS, drifting_quadrants, toy_set

__all__ = ["TOY_SETS", "Control", "Daemon", "Producer", "ServeConfig", "drifting_quadrants",
           "toy_set"]
