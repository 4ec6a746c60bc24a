"""What a network is: layer specs, activations, initialisers and the Network container."""

from tweenstream.models.dense import Dense
from tweenstream.models.flatten import Flatten
from tweenstream.models.lstm import LSTM
from tweenstream.models.network import Network
from tweenstream.models.norm import LayerNorm, RMSNorm
from tweenstream.models.registry import LayerKind, kind_named, kind_of, kinds, register
from tweenstream.models.rnn import RNN

__all__ = ["LSTM", "RNN", "Dense", "Flatten", "LayerKind", "LayerNorm", "Network", "RMSNorm",
           "kind_named", "kind_of", "kinds", "register"]
