"""Where data comes from: the wire protocol, the daemon, its clients, and synthetic sources.

Names are imported on first use, so that ``tweenstream.stream.protocol`` (numpy and msgpack
only) can be used by the edge predictor without loading the compiled engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Control": "tweenstream.stream.client",
    "Producer": "tweenstream.stream.client",
    "Daemon": "tweenstream.stream.daemon",
    "ServeConfig": "tweenstream.stream.daemon",
    "TOY_SETS": "tweenstream.stream.sources",
    "drifting_quadrants": "tweenstream.stream.sources",
    "toy_set": "tweenstream.stream.sources",
}
__all__ = ["TOY_SETS", "Control", "Daemon", "Producer", "ServeConfig", "drifting_quadrants",
           "toy_set"]

if TYPE_CHECKING:
    from tweenstream.stream.client import Control, Producer
    from tweenstream.stream.daemon import Daemon, ServeConfig
    from tweenstream.stream.sources import TOY_SETS, drifting_quadrants, toy_set


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tweenstream.stream' has no attribute {name!r}")
