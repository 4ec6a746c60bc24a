"""pickle, deepcopy and River's clone form: exact continuation, through the model-file format."""

from __future__ import annotations

import copy
import pickle
import pickletools

import numpy as np
import pytest
from helpers import quadrant_data

import tweenstream
from tweenstream import Dense, Learner, ModelFileError, Network
from tweenstream.models import kinds


def _same(a: Learner, b: Learner) -> None:
    for name, arr in a._arrays().items():
        assert np.array_equal(arr, b._arrays()[name]), name
    assert a.state() == b.state()
    assert a._rng.bit_generator.state == b._rng.bit_generator.state
    assert a.features == b.features and a.classes == b.classes


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
@pytest.mark.parametrize("mode", ["backprop", "tween", "tween-heuristic", "hybrid"])
def test_a_copy_continues_bit_exactly(net_a, mode, how):
    X, y = quadrant_data(3_000, seed=1)
    straight = Learner(net_a, mode=mode, seed=2, switch_after=1_500, reservoir_size=64)
    straight.learn_many(X, y)
    stopped = Learner(net_a, mode=mode, seed=2, switch_after=1_500, reservoir_size=64)
    stopped.learn_many(X[:1_001], y[:1_001])
    copied = {"pickle": lambda m: pickle.loads(pickle.dumps(m)), "deepcopy": copy.deepcopy,
              "copy": copy.copy}[how](stopped)
    _same(stopped, copied)
    copied.learn_many(X[1_001:], y[1_001:])
    _same(straight, copied)
    # independent buffers: the copy's learning left the original where it stopped
    assert stopped.state()["samples_seen"] == 1_001


def test_dicts_string_labels_and_regression_survive_pickling():
    model = Learner(Network(3, [Dense(4, "tanh"), Dense(3)]), seed=0)
    rows = [({"temp": 20.0 + i % 5, "room": "hall" if i % 2 else "attic"},
             ["hot", "cold", "ok"][i % 3]) for i in range(200)]
    for x, label in rows[:150]:
        model.learn_one(x, label)
    again = pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    _same(model, again)
    for x, label in rows[150:]:
        model.learn_one(x, label)
        again.learn_one(x, label)
    _same(model, again)
    assert again.predict_one(rows[0][0]) == model.predict_one(rows[0][0])

    reg = Learner(Network(2, [Dense(3), Dense(2)], task="regression"), seed=1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2)).astype(np.float32)
    reg.learn_many(X, X * 3.0 + 1.0)
    copied = copy.deepcopy(reg)
    _same(reg, copied)
    assert np.array_equal(reg.predict_many(X), copied.predict_many(X))


def test_the_pickle_refers_to_nothing_but_the_model_file_reader(net_a):
    data = pickle.dumps(Learner(net_a, seed=0))
    globals_ = set()
    ops = list(pickletools.genops(data))
    for i, (op, arg, _) in enumerate(ops):
        if op.name in ("GLOBAL", "INST"):
            globals_.add(tuple(arg.split(" ")))
        elif op.name == "STACK_GLOBAL":  # the two strings pushed just before it
            strings = [a for o, a, _ in ops[:i] if o.name.endswith("UNICODE")]
            globals_.add((strings[-2], strings[-1]))
    assert globals_ == {("tweenstream.runtime.persist", "from_bytes")}


def test_tampered_pickled_bytes_are_refused(net_a):
    model = Learner(net_a, seed=0)
    model.learn_many(*quadrant_data(50, seed=2))
    fn, (raw,) = model.__reduce__()
    damaged = bytearray(raw)
    damaged[len(damaged) // 2] ^= 0xFF
    with pytest.raises(ModelFileError, match="model bytes"):
        fn(bytes(damaged))
    with pytest.raises(ModelFileError, match="bytes were expected"):
        fn("not bytes")


def test_networks_of_every_kind_pickle(net_a):
    from tweenstream import (
        LSTM,
        Conv1D,
        Embedding,
        Flatten,
        LayerNorm,
        MultiHeadAttention,
        Residual,
    )

    nets = [net_a,
            Network((6, 3), [LSTM(4, return_sequences=True), MultiHeadAttention(2), LayerNorm(),
                             Conv1D(4, 3), Flatten(), Dense(2)]),
            Network(5, [Embedding(10, 4), Flatten(), Residual([Dense(20, "relu")]), Dense(3)])]
    for net in nets:
        again = pickle.loads(pickle.dumps(net))
        assert again.to_dict() == net.to_dict()
        assert copy.deepcopy(net) is net  # immutable: a copy is the network itself


def test_clone_in_rivers_calling_form(net_a):
    model = Learner(net_a, seed=0, tween_rate=0.2)
    model.learn_many(*quadrant_data(100, seed=3))
    fresh = model.clone({"seed": 5, "tween_rate": 0.1})
    assert fresh.seed == 5 and fresh.config.tween_rate == 0.1
    assert fresh.state()["samples_seen"] == 0
    assert model.clone().seed == 0 and model.clone().state()["samples_seen"] == 0
    exact = model.clone(include_state=True)
    _same(model, exact)
    with pytest.raises(TypeError, match="unknown setting"):
        model.clone({"no_such_setting": 1})
    with pytest.raises(ValueError, match="not both"):
        model.clone({"seed": 1}, include_state=True)
    with pytest.raises(TypeError, match="dict of settings"):
        model.clone(True)  # the old positional include_state


def test_every_layer_kind_is_exported_at_the_top_level():
    # the kinds a user declares (ResidualBegin and ResidualEnd are a Residual's plan rows)
    classes = {k.spec_type.__name__ for k in kinds()
               if k.spec_type.__name__ in tweenstream.models.__all__}
    assert classes == set(tweenstream.LAYERS) and len(classes) == 16
    for name in classes:
        assert name in tweenstream.__all__, name
        assert getattr(tweenstream, name) is getattr(tweenstream.models, name)
    for name in tweenstream.__all__:
        assert getattr(tweenstream, name) is not None
