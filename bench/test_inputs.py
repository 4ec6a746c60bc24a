"""Speed of the input stage: µs per call for a 10-feature sample as a dict or an array, with
the model's standardisation on (the default) and off, and per sample for ``learn_many``.

The network is 10-32-2 (tanh), backprop; the dict has str keys and float values, as River's
datasets give them. ``extra_info["samples"]`` is the samples one timed call processes.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tweenstream import Dense, Learner, Network

D = 10


def _setup(scaling: str) -> tuple[Learner, np.ndarray, list[dict], np.ndarray]:
    model = Learner(Network(D, [Dense(32, "tanh"), Dense(2)]), mode="backprop", seed=0,
                    scaling=scaling)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4_000, D)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    dicts = [{f"x{j}": float(v) for j, v in enumerate(row)} for row in X]
    model.learn_many(dicts[:10], y[:10].tolist())  # compile before timing; keys get slots
    model.learn_many(X[:10], y[:10])
    model.predict_one(dicts[0])
    return model, X, dicts, y


def _info(benchmark, form: str, scaling: str, op: str, samples: int) -> None:
    benchmark.extra_info.update(table="inputs", form=form, scaling=scaling, op=op,
                                samples=samples)


@pytest.mark.parametrize("scaling", ["auto", "off"])
@pytest.mark.parametrize("form", ["dict", "array"])
def test_learn_one(benchmark, form, scaling):
    model, X, dicts, y = _setup(scaling)
    rows = dicts if form == "dict" else list(X)
    stream = itertools.cycle(list(zip(rows, y.tolist(), strict=True)))

    def learn_one() -> None:
        x, c = next(stream)
        model.learn_one(x, c)

    _info(benchmark, form, scaling, "learn_one", 1)
    benchmark(learn_one)


@pytest.mark.parametrize("scaling", ["auto", "off"])
@pytest.mark.parametrize("form", ["dict", "array"])
def test_predict_one(benchmark, form, scaling):
    model, X, dicts, _ = _setup(scaling)
    _info(benchmark, form, scaling, "predict_one", 1)
    benchmark(model.predict_one, dicts[5] if form == "dict" else X[5])


@pytest.mark.parametrize("scaling", ["auto", "off"])
def test_learn_many(benchmark, scaling):
    model, X, _, y = _setup(scaling)
    _info(benchmark, "array", scaling, "learn_many", len(X))
    benchmark.pedantic(model.learn_many, args=(X, y), rounds=7, iterations=1, warmup_rounds=1)


def test_feature_slots_read(benchmark):
    """The dict reading alone (FeatureSlots.read into its buffer), no compiled call."""
    model, _, dicts, _ = _setup("off")
    stage = model._input
    _info(benchmark, "dict", "n/a", "read", 1)
    benchmark(stage.slots.read, dicts[5], stage._buf1)
