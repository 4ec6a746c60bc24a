"""Every registered layer kind has every part: spec, shapes, init, op code, kernels, oracle."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from oracle import ORACLES

from tweenstream import Learner, Network
from tweenstream.models import kinds
from tweenstream.models.registry import MAX_DIMS

KINDS = kinds()


def _example(kind):
    """The smallest valid spec of a kind (every kind's first field is its size)."""
    first = dataclasses.fields(kind.spec_type)[0].name
    return kind.spec_type(**{first: 3})


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_every_kind_has_every_part(kind):
    spec = _example(kind)
    assert dataclasses.is_dataclass(spec) and kind.spec_type.__dataclass_params__.frozen
    in_shape = (5,)
    out_shape = kind.output_shape(spec, in_shape)
    shapes = kind.param_shapes(spec, in_shape)
    values = kind.init(spec, in_shape, np.random.default_rng(0))
    assert [v.shape for v in values] == [s for _, s in shapes]
    assert all(v.dtype == np.float32 for v in values)
    assert len(kind.plan_dims(spec, in_shape)) <= MAX_DIMS
    assert kind.type_rate > 0 and kind.op_code > 0
    assert kind.name in ORACLES, f"no NumPy oracle for {kind.name!r} in tests/oracle"
    # the interpreter dispatches on its op code: a network of it learns and predicts
    from tweenstream import Dense

    net = Network(5, [spec, Dense(2)])
    model = Learner(net, mode="backprop", seed=0)
    before = model.arena.params.copy()
    model.learn_one(np.ones(5, np.float32), 1)
    assert not np.array_equal(before, model.arena.params)
    assert model.predict_proba_many(np.ones((2, 5), np.float32)).shape == (2, 2)
    assert out_shape == net.shapes[0]
