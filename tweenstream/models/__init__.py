"""What a network is: layer specs, activations, initialisers and the Network container."""

from tweenstream.models.dense import Dense
from tweenstream.models.network import Network
from tweenstream.models.registry import LayerKind, kind_named, kind_of, kinds, register

__all__ = ["Dense", "LayerKind", "Network", "kind_named", "kind_of", "kinds", "register"]
