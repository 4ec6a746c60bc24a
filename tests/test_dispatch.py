"""The generated dispatchers reach every kind's kernels, refuse what they do not know, and a
network compiles only its own kinds.

``check_dispatch`` runs one dispatcher of an engine and the kind's own kernel on copies of the
same buffers and requires the same result; a missing branch would raise (unknown op code)
instead of doing nothing. The last test deletes a branch from the generated text and checks
that ``check_dispatch`` catches it.
"""

from __future__ import annotations

import numpy as np
import pytest
from kinds import EXAMPLES
from numba import njit

from tweenstream import Learner
from tweenstream.models import kind_named, kind_of
from tweenstream.runtime import dispatch, dispatch_gen
from tweenstream.runtime import layout as lay
from tweenstream.runtime.arena import Arena
from tweenstream.runtime.engine import all_row_kinds, engine_for, engine_of, plan_kinds
from tweenstream.runtime.kernels import bound_names
from tweenstream.runtime.plan import compile_plan

ROW_KINDS = [k.name for k in dispatch_gen.row_kinds()]
F32 = np.float32
_UPDATE = (F32(0.05), F32(0.05), F32(np.inf), F32(0.9), F32(1.0), F32(0.1), False)


def _filled(plan, seed):
    """An arena with random parameters and random values in every work row."""
    arena = Arena(plan)
    rng = np.random.default_rng(seed)
    arena.initialise(rng)
    arena.work[:] = rng.uniform(-1, 1, arena.work.shape).astype(F32)
    if kind_named("embedding") in [kind_of(s) for s, _, _ in plan.network.rows]:
        arena.work[lay.W_ACT, :plan.network.n_inputs] = rng.integers(0, 7, plan.network.n_inputs)
    return arena


def _call(fn, role, row, arena):
    if role == "forward":
        return fn(row, arena.pbuf, arena.work)
    if role == "signal":
        return fn(row, arena.pbuf, arena.work, True)
    if role == "project":
        return fn(row, arena.pbuf, arena.work, F32(-1.0), F32(1.0))
    return fn(row, arena.pbuf, arena.work, *_UPDATE)


def check_dispatch(dispatcher, kernel, role, plan, i, seed=0):
    """Run ``dispatcher`` and the kind's ``kernel`` on the same state; both must agree and
    change something."""
    row = plan.table[i]
    a, b = _filled(plan, seed), _filled(plan, seed)
    before = (a.pbuf.copy(), a.work.copy())
    got = _call(dispatcher, role, row, a)
    want = _call(kernel, role, row, b)
    np.testing.assert_array_equal(a.work, b.work)
    np.testing.assert_array_equal(a.pbuf, b.pbuf)
    if role == "update":
        assert got == pytest.approx(want)
    changed = not (np.array_equal(before[0], a.pbuf) and np.array_equal(before[1], a.work))
    assert changed, f"{role} of row {i} changed nothing"


@pytest.mark.parametrize("name", ROW_KINDS)
def test_every_kind_through_every_dispatcher(name):
    kind = kind_named(name)
    plan = compile_plan(kind.example())
    engine = engine_of(all_row_kinds(), heuristic=True)  # one compilation serves every kind
    rows = [i for i, (spec, _, _) in enumerate(plan.network.rows) if kind_of(spec) is kind]
    bundle = kind.part("kernels")
    for role in ("forward", "signal", "update", "project"):
        kernel = getattr(bundle, role)
        if kernel is None:
            if role == "update":  # no parameters: the dispatcher returns 0 and touches nothing
                a = _filled(plan, 0)
                before = a.pbuf.copy()
                assert engine.dispatch[role](plan.table[rows[0]], a.pbuf, a.work, *_UPDATE) == 0
                np.testing.assert_array_equal(a.pbuf, before)
            continue
        for i in rows:
            check_dispatch(engine.dispatch[role], kernel, role, plan, i)


def test_a_deleted_branch_is_caught():
    """Delete LSTM's update branch from the generated text: the check above fails loudly."""
    text = dispatch_gen.render()
    branch = "    elif op == 6:  # lstm\n        return update_lstm(row, pbuf, work, coef_w, "
    assert branch in text
    start = text.index(branch)
    end = text.index("\n", text.index("\n", start) + 1) + 1
    mutated = text[:start] + text[end:]
    namespace = dict(vars(dispatch))
    namespace.update(bound_names(kind_named("lstm")))
    exec(compile(mutated, "<mutated dispatch>", "exec"), namespace)
    update_layer = njit(namespace["update_layer"])
    plan = compile_plan(kind_named("lstm").example())
    kernel = kind_named("lstm").part("kernels").update
    with pytest.raises(ValueError, match="op code"):
        check_dispatch(update_layer, kernel, "update", plan, 0)


def test_unknown_op_code_and_absent_kind_are_errors():
    model = Learner(EXAMPLES["dense"], seed=0)
    X = np.ones((2, 6), F32)
    table = model._plan.table.copy()
    table[0, lay.C_OP] = 99
    args = (table, *model._args[1:])
    with pytest.raises(ValueError, match="op code"):
        model.engine.learn_many(*args, X, np.zeros(2, np.int64), model._yr1, False)
    lstm_plan = compile_plan(EXAMPLES["lstm"])
    lstm_model = Learner(EXAMPLES["lstm"], seed=0)
    wrong = (lstm_plan.table, *lstm_model._args[1:])
    with pytest.raises(RuntimeError, match="compiled without"):  # the engine of Dense only
        engine_of(["dense"]).learn_many(*wrong, np.ones((1, 6), F32), np.zeros(1, np.int64),
                                lstm_model._yr1, False)
    a = model.arena
    with pytest.raises(ValueError, match="op code"):
        model.engine.predict_many(table, a.pbuf, a.work, 0, X, np.zeros((2, 3), F32))


_ONLY_ITS_KINDS = """
import numpy as np
from tweenstream import Dense, Learner, Network
from tweenstream.models import kinds
model = Learner(Network(3, [Dense(4, "tanh"), Dense(2)]), seed=0)
model.learn_many(np.ones((2, 3), np.float32), np.zeros(2, np.int64))
model.predict_many(np.ones((2, 3), np.float32))
for kind in kinds():
    if kind.kernels is not None:
        used = [fn.py_func.__name__ for fn in kind.part("kernels") if fn is not None
                and (fn.signatures or fn.stats.cache_hits)]
        print(kind.name, sorted(used))
stats = model.engine.learn_many.stats
print("cache", sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def test_a_network_compiles_only_its_kinds(tmp_path):
    """In a fresh process with an empty compile cache (a cached entry point would load without
    compiling its kernels, and show nothing)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), TWEENSTREAM_ENGINE="kinds")
    out = subprocess.run([sys.executable, "-c", _ONLY_ITS_KINDS], capture_output=True,
                         text=True, check=True, timeout=900, env=env).stdout
    used = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert used.pop("cache") == "0 1"  # compiled, and written to the cache
    assert used.pop("dense") != "[]"
    assert set(used.values()) == {"[]"}, used  # no kernel of another kind was compiled
    # a second process loads the engine from the cache: nothing compiles, no kernel at all
    again = subprocess.run([sys.executable, "-c", _ONLY_ITS_KINDS], capture_output=True,
                           text=True, check=True, timeout=900, env=env).stdout
    used = dict(line.split(" ", 1) for line in again.strip().splitlines())
    assert used.pop("cache") == "1 0"
    assert set(used.values()) == {"[]"}, used


def test_plan_kinds_and_engine_sharing():
    plan = compile_plan(EXAMPLES["residual"])
    assert plan_kinds(plan) == ("dense", "residual_begin", "residual_end")
    assert engine_for(plan) is engine_of(["residual_end", "dense", "residual_begin"])
    assert engine_for(plan) is not engine_for(plan, heuristic=True)


def test_the_compile_helper_fills_the_cache_with_backward_kernels(tmp_path):
    """``python -m tweenstream.runtime.precompile`` compiles the signal and update kernels of
    the kinds it is given (and the projections with --heuristic) into the cache."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-m", "tweenstream.runtime.precompile", "--heuristic",
                    "rnn", "flatten"], env=env, check=True, timeout=900)
    names = {p.name.split("-")[0] for p in tmp_path.rglob("*.nbi")}
    assert {"rnn.rnn_signal", "rnn.rnn_update", "rnn.rnn_project_target",
            "flatten.flatten_signal"} <= names
    assert "rnn.rnn_forward" not in names  # the first process compiles the forward pass


def test_the_compile_helper_starts_only_when_it_helps(monkeypatch, tmp_path):
    from tweenstream.runtime import precompile

    started = []

    class Spy:
        def __init__(self, argv, **kwargs):
            started.append(argv)

        def poll(self):
            return 0

    monkeypatch.setattr(precompile.subprocess, "Popen", Spy)

    class Entry:  # a dispatcher whose cache index does not exist yet
        class _cache:
            class _cache_file:
                _index_path = str(tmp_path / "none.nbi")

    assert precompile.start_helper(("dense", "lstm"), Entry, True) is not None
    assert started[-1][-3:] == ["--heuristic", "dense", "lstm"]
    assert precompile.start_helper(("dense",), Entry) is None  # one kind: nothing to share
    (tmp_path / "none.nbi").write_bytes(b"")
    assert precompile.start_helper(("dense", "lstm"), Entry) is None  # cached already
    (tmp_path / "none.nbi").unlink()
    monkeypatch.setenv("TWEENSTREAM_PARALLEL_COMPILE", "0")
    assert precompile.start_helper(("dense", "lstm"), Entry) is None
    monkeypatch.setattr(precompile.subprocess, "Popen", None)  # cannot start: no error
    monkeypatch.delenv("TWEENSTREAM_PARALLEL_COMPILE")
    assert precompile.start_helper(("dense", "lstm"), Entry) is None
    assert len(started) == 1
