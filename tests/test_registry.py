"""Every registered layer kind has every part: spec, shapes, init, op code, kernels, oracle,
ONNX converter, and an example network for the shared invariant suite."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from kinds import EXAMPLES

from tweenstream import Learner
from tweenstream.export.registry import converters
from tweenstream.models import kind_of, kinds
from tweenstream.models.registry import MAX_DIMS

KINDS = kinds()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_every_kind_has_every_part(kind):
    assert kind.name in EXAMPLES, f"give {kind.name!r} an example network (LayerKind.example)"
    assert kind.oracle is not None, f"{kind.name!r} names no NumPy oracle in tests/oracle"

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
    assert len(kind.row_dims(spec, in_shape)) == len(kind.dims) <= MAX_DIMS
    assert kind.type_rate > 0 and kind.op_code > 0
    assert all(size >= 0 for size in kind.scratch_sizes(spec, in_shape))
    assert [n for n, _ in kind.param_list(spec, in_shape)] == list(kind.params)
    # the interpreter dispatches on its op code: the network learns and predicts
    model = Learner(net, mode="backprop", seed=0)
    before = model.arena.params.copy()
    model.learn_one(np.ones(net.n_inputs, np.float32), 1)
    assert not np.array_equal(before, model.arena.params)
    assert model.predict_proba_many(np.ones((2, net.n_inputs), np.float32)).shape == (2, 3)


def test_every_kind_names_every_part():
    from oracle import oracle_of

    from tweenstream.runtime.kernels import Kernels

    for kind in KINDS:
        assert kind.example is not None and kind.oracle is not None, kind.name
        assert oracle_of(kind) is not None
        assert callable(kind.part("converter"))
        if kind.kernels is None:  # a spec that compiles to rows of other kinds
            continue
        bundle = kind.part("kernels")
        assert isinstance(bundle, Kernels), kind.name
        assert (bundle.project is not None) == (kind.heuristic == "project"), kind.name
        assert (bundle.update is None) == (not kind.param_shapes(*_first(kind))), kind.name


def _first(kind):
    net = kind.example()
    for spec, in_shape, _ in net.rows:
        if kind_of(spec) is kind:
            return spec, in_shape
    return next((s, i) for s, i in zip(net.layers, net.in_shapes, strict=True)
                if kind_of(s) is kind)


def test_checked_in_dispatch_matches_the_registry():
    from pathlib import Path

    from tweenstream.runtime import dispatch, dispatch_gen

    assert Path(dispatch.__file__).read_text() == dispatch_gen.render(), (
        "tweenstream/runtime/dispatch.py is stale: run python -m tweenstream.runtime.dispatch_gen")
    assert dispatch_gen.main(["--check"]) == 0


def test_a_kind_with_a_packed_or_unnamed_dim_is_refused():
    from tweenstream.models.dense import DENSE

    bad = dataclasses.replace(DENSE, plan_dims=lambda spec, s: {"n_out": 3, "n_in": 5})
    with pytest.raises(ValueError, match="declares"):
        bad.row_dims(None, (5,))
    with pytest.raises(ValueError, match="distinct"):
        dataclasses.replace(DENSE, dims=("a",) * (MAX_DIMS + 1))


def test_shared_weights_take_one_over_root_positions_as_type_rate():
    """Kinds whose weights are shared over positions: 1/sqrt(steps) for the recurrent kinds,
    1/sqrt(output positions) for the convolutions; the others keep their constant."""
    from tweenstream import (
        LSTM,
        RNN,
        Conv1D,
        Conv2D,
        Dense,
        Flatten,
        MultiHeadAttention,
        Network,
        TimeDense,
    )

    nets = {
        "rnn": (Network((16, 3), [RNN(4, return_sequences=True), RNN(4), Dense(2)]),
                [0.25, 0.25, 1.0]),
        "lstm": (Network((9, 3), [LSTM(4), Dense(2)]), [1 / 3, 1.0]),
        "conv2d": (Network((8, 8, 1), [Conv2D(4, 3), Flatten(), Dense(2)]),  # valid: 6 x 6
                   [1 / 6, 1.0, 1.0]),
        "conv1d": (Network((16, 1), [Conv1D(4, 3, padding="same"), Flatten(), Dense(2)]),
                   [0.25, 1.0, 1.0]),
        "time_dense": (Network((4, 3), [TimeDense(5), Flatten(), Dense(2)]), [0.5, 1.0, 1.0]),
        "attention": (Network((8, 4), [MultiHeadAttention(2), Flatten(), Dense(2)]),
                      [0.2, 1.0, 1.0]),
    }
    for name, (net, rates) in nets.items():
        model = Learner(net, seed=0)
        got = [layer["type_rate"] for layer in model.state()["layers"]]
        assert got == pytest.approx(rates), name
