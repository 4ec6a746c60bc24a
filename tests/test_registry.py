"""Every registered layer kind has every part: spec, shapes, init, op code, kernels, oracle,
ONNX converter, and an example network for the shared invariant suite."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from kinds import EXAMPLES
from oracle import ORACLES

from tweenstream import Learner
from tweenstream.export.registry import converters
from tweenstream.models import kind_of, kinds
from tweenstream.models.registry import MAX_DIMS

KINDS = kinds()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_every_kind_has_every_part(kind):
    assert kind.name in EXAMPLES, f"add an example network for {kind.name!r} to tests/kinds.py"
    assert kind.name in ORACLES, f"no NumPy oracle for {kind.name!r} in tests/oracle"
    import tweenstream.export.builder  # noqa: F401  (registers the converters)

    assert kind.name in converters(), f"no ONNX converter for {kind.name!r}"
    net = EXAMPLES[kind.name]
    found = [(s, i) for s, i, _ in net.rows if kind_of(s) is kind] or \
        [(s, i) for s, i in zip(net.layers, net.in_shapes, strict=True) if kind_of(s) is kind]
    spec, in_shape = found[0]
    assert dataclasses.is_dataclass(spec) and kind.spec_type.__dataclass_params__.frozen
    assert kind.output_shape(spec, in_shape) in {out for _, _, out in net.rows} | set(net.shapes)
    values = kind.init(spec, in_shape, np.random.default_rng(0))
    assert [v.shape for v in values] == [s for _, s in kind.param_shapes(spec, in_shape)]
    assert all(v.dtype == np.float32 for v in values)
    assert len(kind.plan_dims(spec, in_shape)) <= MAX_DIMS
    assert kind.type_rate > 0 and kind.op_code > 0 and kind.scratch(spec, in_shape) >= 0
    # the interpreter dispatches on its op code: the network learns and predicts
    model = Learner(net, mode="backprop", seed=0)
    before = model.arena.params.copy()
    model.learn_one(np.ones(net.n_inputs, np.float32), 1)
    assert not np.array_equal(before, model.arena.params)
    assert model.predict_proba_many(np.ones((2, net.n_inputs), np.float32)).shape == (2, 3)
