"""The hot path allocates nothing: neither Python memory nor Numba runtime memory per sample.

Each call from Python into compiled code wraps its array arguments in Numba runtime records
that are freed when the call returns (one per array argument, whatever the sample count).
The tests measure that boundary cost with a one-sample call and check that nothing beyond it
is allocated (a batch crosses once per chunk of the input stage, 256 rows at most), that every
runtime allocation is freed, and that Python's traced memory does not change over 10,000
``learn_one`` calls and one ``learn_many`` of 100,000 samples.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
from helpers import quadrant_data
from numba.core.runtime import _nrt_python, rtsys

from tweenstream import Learner


def _nrt() -> tuple[int, int]:
    """(allocations, frees) made by compiled code so far."""
    stats = rtsys.get_allocation_stats()
    return stats.alloc, stats.free


@pytest.fixture(scope="module", autouse=True)
def nrt_stats():
    _nrt_python.memsys_enable_stats()
    yield
    _nrt_python.memsys_disable_stats()


def _traced_growth(call) -> int:
    """Python memory still allocated after ``call`` returns (tracemalloc, after a collection)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        call()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def _boundary_cost(call) -> int:
    a0, _ = _nrt()
    call()
    return _nrt()[0] - a0


@pytest.mark.parametrize("mode, optimizer", [
    ("backprop", "sgd"), ("backprop", "adam"), ("backprop", "adagrad"), ("tween", "sgd"),
    ("tween-heuristic", "sgd"), ("hybrid", "sgd"), ("hybrid", "adam")])
def test_learn_one_allocates_nothing_per_sample(net_a, mode, optimizer):
    X, y = quadrant_data(20_201, seed=0)
    labels = y.tolist()
    model = Learner(net_a, mode=mode, optimizer=optimizer, seed=0, switch_after=5_000)

    def learn(start: int, stop: int) -> None:
        for i in range(start, stop):
            model.learn_one(X[i], labels[i])

    learn(0, 200)  # warm-up: compile or load kernels
    per_call = _boundary_cost(lambda: learn(200, 201))
    alloc0, free0 = _nrt()
    learn(201, 10_201)
    alloc1, free1 = _nrt()
    assert per_call <= 17  # one record per array argument: 12 to learn, 5 to scale
    assert alloc1 - alloc0 == 10_000 * per_call
    assert free1 - free0 == alloc1 - alloc0
    assert _traced_growth(lambda: learn(10_201, 20_201)) <= _traced_growth(lambda: learn(0, 1))
    assert model.state()["samples_seen"] == 20_202


@pytest.mark.parametrize("half", ["first", "second"])
def test_a_hybrid_race_allocates_nothing_per_sample(net_a, half):
    """Both halves of a race (the second is scored sample by sample): the shadow's buffers
    are allocated at the race's start, and no sample allocates after that."""
    X, y = quadrant_data(61_000, seed=3)
    labels = y.tolist()
    # a race from sample 500 to 80,500, half-way at 40,500: no boundary in the measured spans
    model = Learner(net_a, mode="hybrid", seed=0, race_first=500, race_length=80_000)

    def learn(start: int, stop: int) -> None:
        for i in range(start, stop):
            model.learn_one(X[i], labels[i])

    start = 600 if half == "first" else 40_600
    learn(0, start)
    assert model.state()["racing"] and model._race.marked == (half == "second")
    per_call = _boundary_cost(lambda: learn(start, start + 1))
    alloc0, free0 = _nrt()
    learn(start + 1, start + 10_001)
    alloc1, free1 = _nrt()
    assert alloc1 - alloc0 == 10_000 * per_call and free1 - free0 == alloc1 - alloc0
    assert _traced_growth(lambda: learn(start + 10_001, start + 20_001)) <= _traced_growth(
        lambda: learn(start + 20_001, start + 20_002))
    model.learn_many(X[start + 20_002:], y[start + 20_002:])
    assert model.state()["racing"]


@pytest.mark.parametrize("mode, optimizer, batch", [
    ("backprop", "sgd", 1), ("backprop", "adam", 1), ("backprop", "adagrad", 3),
    ("tween", "sgd", 2), ("tween-heuristic", "sgd", 1)])
def test_learn_many_allocates_nothing_per_sample(net_a, mode, optimizer, batch):
    X, y = quadrant_data(100_000, seed=1)
    model = Learner(net_a, mode=mode, optimizer=optimizer, seed=0, batch_size=batch)
    per_call = _boundary_cost(lambda: model.learn_many(X[:1], y[:1]))
    alloc0, free0 = _nrt()
    model.learn_many(X, y)
    alloc1, free1 = _nrt()
    # the input stage scales a batch in chunks of fixed buffers: one crossing per chunk
    chunks = -(-len(X) // model._input.chunk_rows)
    assert alloc1 - alloc0 == chunks * per_call
    assert free1 - free0 == chunks * per_call
    assert _traced_growth(lambda: model.learn_many(X, y)) <= _traced_growth(
        lambda: model.learn_many(X[:1], y[:1]))
    assert np.isfinite(model.arena.params).all()


@pytest.mark.parametrize("recency", [0.0, 0.3])
def test_the_replay_reservoir_adds_no_allocation_per_sample(net_a, recency):
    X, y = quadrant_data(20_001, seed=2)
    labels = y.tolist()
    model = Learner(net_a, seed=0, reservoir_size=1_000, reservoir_recency=recency)

    def learn(start: int, stop: int) -> None:
        for i in range(start, stop):
            model.learn_one(X[i], labels[i])

    learn(0, 2_000)  # warm-up, and the reservoir is full: every later offer may replace
    model.learn_many(X[2_000:3_000], y[2_000:3_000])
    # retained growth: 17,000 samples keeping even one small object each would be >= 476 KB;
    # the 1 KiB slack absorbs a one-off (32 bytes measured: a counter's int object)
    assert _traced_growth(lambda: learn(3_000, 20_000)) <= _traced_growth(
        lambda: learn(20_000, 20_001)) + 1_024
    assert _traced_growth(lambda: model.learn_many(X, y)) <= _traced_growth(
        lambda: model.learn_many(X[:1], y[:1])) + 1_024
    assert len(model.reservoir) == 1_000


def test_dict_samples_allocate_nothing_per_sample(net_a):
    """Dicts go through the model's feature slots into buffers allocated once: after warm-up
    Python's traced memory does not grow, and compiled code allocates only its boundary
    records (a learn_one crosses twice: the input stage, then the engine)."""
    X, y = quadrant_data(10_001, seed=3)
    rows = [{f"f{j}": float(v) for j, v in enumerate(x)} for x in X]
    labels = ["q" + str(c) for c in y.tolist()]  # str labels through the label map
    model = Learner(net_a, mode="backprop", seed=0)

    def learn(start: int, stop: int) -> None:
        for i in range(start, stop):
            model.learn_one(rows[i], labels[i])

    learn(0, 200)
    per_call = _boundary_cost(lambda: learn(200, 201))
    alloc0, free0 = _nrt()
    learn(201, 5_201)
    alloc1, free1 = _nrt()
    assert alloc1 - alloc0 == 5_000 * per_call and free1 - free0 == alloc1 - alloc0
    assert _traced_growth(lambda: learn(5_201, 10_001)) <= _traced_growth(lambda: learn(0, 1))
    assert sorted(model.classes) == ["q0", "q1", "q2", "q3"]
