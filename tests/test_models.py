"""Network and layer specs: shapes, validation messages, (de)serialisation, registry."""

from __future__ import annotations

import numpy as np
import pytest

from tweenstream import Dense, Network
from tweenstream.models import kind_named, kinds, register
from tweenstream.models.activations import ACTIVATION_CODES, canonical_activation
from tweenstream.models.init import he_normal, xavier_uniform


def test_shapes_and_param_count(net_a):
    assert net_a.shapes == ((32,), (32,), (4,))
    assert net_a.in_shapes == ((8,), (32,), (32,))
    assert net_a.param_count == 8 * 32 + 32 + 32 * 32 + 32 + 32 * 4 + 4
    assert net_a.n_inputs == 8 and net_a.n_outputs == 4


def test_round_trip_dict(net_a):
    again = Network.from_dict(net_a.to_dict())
    assert again == net_a and hash(again) == hash(net_a)


def test_network_is_immutable(net_a):
    with pytest.raises(AttributeError, match="Network is immutable"):
        net_a.task = "regression"


@pytest.mark.parametrize("name", sorted(ACTIVATION_CODES))
def test_every_activation_is_accepted(name):
    assert Dense(4, activation=name).activation == name


def test_activation_aliases():
    assert canonical_activation("swish") == "silu" and canonical_activation(" TANH ") == "tanh"


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"units": 0}, ValueError, r"Dense.units must be >= 1, found 0"),
    ({"units": 2.5}, TypeError, r"Dense.units must be an int, found float"),
    ({"units": True}, TypeError, r"Dense.units must be an int, found bool"),
    ({"units": 3, "activation": "relu6"}, ValueError,
     r"Dense.activation: unknown activation 'relu6'; use one of gelu, leaky_relu, linear"),
    ({"units": 3, "activation": 3}, TypeError,
     r"Dense.activation must be a string such as 'relu', found int"),
    ({"units": 3, "init": "orthogonal"}, ValueError,
     r"Dense.init must be one of \('xavier', 'he', 'auto'\), found 'orthogonal'"),
])
def test_dense_errors(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        Dense(**kwargs)


@pytest.mark.parametrize("args, kwargs, exc, message", [
    ((0, [Dense(2)]), {}, ValueError, r"input_dim must be positive ints, found 0"),
    (("8", [Dense(2)]), {}, TypeError, r"input_dim must be an int or a tuple of ints, found str"),
    ((8, []), {}, ValueError, r"a network needs at least one layer"),
    ((8, Dense(2)), {}, TypeError, r"layers must be a list of layer specs"),
    ((8, [Dense(2), "relu"]), {}, TypeError, r"layer 1: 'relu' is not a layer spec; use one of"),
    ((8, [Dense(4, "softmax"), Dense(2)]), {}, ValueError,
     r"layer 0: softmax is allowed only on the output layer of a classifier"),
    ((8, [Dense(4, "tanh")]), {}, ValueError,
     r"layer 0: a classifier's output layer must be linear \(softmax is applied by the loss\), "
     r"found activation 'tanh'"),
    ((8, [Dense(1)]), {}, ValueError,
     r"layer 0: a classifier needs one output per class \(>= 2\), found output shape \(1,\)"),
    ((8, [Dense(2, "softmax")]), {"task": "regression"}, ValueError,
     r"layer 0: softmax output is for classification"),
    ((8, [Dense(2)]), {"task": "ranking"}, ValueError,
     r"task must be 'classification' or 'regression', found 'ranking'"),
    (((4, 2), [Dense(2)]), {}, ValueError,
     r"layer 0 \(dense\): Dense expects a flat input \(n,\), found shape \(4, 2\)"),
])
def test_network_errors(args, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        Network(*args, **kwargs)


def test_from_dict_errors():
    with pytest.raises(ValueError, match=r"network description must be a dict"):
        Network.from_dict({"layers": []})
    bad = Network(3, [Dense(2)]).to_dict()
    bad["layers"][0]["colour"] = "red"
    with pytest.raises(ValueError, match=r"layer 0 \(dense\): unknown fields \['colour'\]"):
        Network.from_dict(bad)
    bad["layers"][0] = {"kind": "hypercube"}
    with pytest.raises(ValueError, match=r"unknown layer kind 'hypercube'"):
        Network.from_dict(bad)


def test_registry_refuses_duplicates():
    names = [k.name for k in kinds()]
    with pytest.raises(ValueError, match=r"layer kind 'dense' is already registered"):
        register(kind_named("dense"))
    assert [k.name for k in kinds()] == names


def test_initialisers_are_seeded_and_scaled():
    a = xavier_uniform(np.random.default_rng(5), 100, 50, (50, 100))
    b = xavier_uniform(np.random.default_rng(5), 100, 50, (50, 100))
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert np.abs(a).max() <= np.sqrt(6 / 150)
    h = he_normal(np.random.default_rng(5), 400, 400, (400, 400))
    assert abs(h.std() - np.sqrt(2 / 400)) < 0.002
