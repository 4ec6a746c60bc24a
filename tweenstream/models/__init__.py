"""What a network is: layer specs, activations, initialisers and the Network container."""

from tweenstream.models.attention import MultiHeadAttention
from tweenstream.models.conv import AvgPool2D, Conv1D, Conv2D, MaxPool2D
from tweenstream.models.dense import Dense
from tweenstream.models.embedding import Embedding
from tweenstream.models.flatten import Flatten
from tweenstream.models.lstm import LSTM
from tweenstream.models.network import Network
from tweenstream.models.norm import LayerNorm, RMSNorm
from tweenstream.models.registry import LayerKind, kind_named, kind_of, kinds, register
from tweenstream.models.residual import Residual
from tweenstream.models.rnn import RNN
from tweenstream.models.sequence import RepeatVector, TimeDense
from tweenstream.models.swiglu import SwiGLU

__all__ = ["LSTM", "RNN", "AvgPool2D", "Conv1D", "Conv2D", "Dense", "Embedding", "Flatten",
           "LayerKind", "LayerNorm", "MaxPool2D", "MultiHeadAttention", "Network", "RMSNorm",
           "RepeatVector", "Residual", "SwiGLU", "TimeDense", "kind_named", "kind_of", "kinds",
           "register"]
