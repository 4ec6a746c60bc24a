"""Where a cold compilation spends its time: Numba's compile events, per compiled function.

Run in a fresh process with an empty cache, e.g.
``NUMBA_CACHE_DIR=$(mktemp -d) python -m bench.compile_profile dense`` (or ``many-kinds``).
Prints the total, the time inside LLVM (``numba:llvm_lock`` events), and the functions with the
most exclusive time (their own compilation, without the functions they call), with the number
of times each was compiled (more than once means several argument types).
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
from numba.core import event

from bench.cold_start import CASES


def _network(case: str):  # the networks of bench/cold_start.py
    from tweenstream import Dense, Network
    from tweenstream.models import (
        LSTM,
        RNN,
        Conv1D,
        Embedding,
        Flatten,
        LayerNorm,
        MultiHeadAttention,
        Residual,
        RMSNorm,
        SwiGLU,
    )

    if CASES[case][0] == "dense":
        return Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)])
    return Network(6, [Embedding(7, 4), Conv1D(4, 3, padding="same", activation="tanh"),
                       LSTM(4, return_sequences=True), RNN(4, return_sequences=True),
                       MultiHeadAttention(2), SwiGLU(8, out=4), LayerNorm(), RMSNorm(),
                       Residual([LayerNorm()]), Flatten(), Dense(8, "tanh"), Dense(3)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("dense", "many-kinds"))
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    from tweenstream import Learner

    started = time.perf_counter()
    with event.install_recorder("numba:compile") as rec, \
            event.install_recorder("numba:llvm_lock") as llvm:
        net = _network(args.case)
        model = Learner(net)
        x = np.ones((1, net.n_inputs), np.float32)
        model.learn_many(x, np.zeros(1, np.int64))
        model.predict_many(x)
    total = time.perf_counter() - started
    own: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    stack: list[list] = []
    for ts, ev in rec.buffer:
        name = ev.data["dispatcher"].py_func.__qualname__
        if ev.is_start:
            stack.append([name, ts, 0.0])
            continue
        name, begun, children = stack.pop()
        own[name] += ts - begun - children
        count[name] += 1
        if stack:
            stack[-1][2] += ts - begun
    in_llvm, begun = 0.0, 0.0
    for ts, ev in llvm.buffer:
        if ev.is_start:
            begun = ts
        else:
            in_llvm += ts - begun
    print(f"{args.case}: {total:.1f} s to the first learned and predicted sample, "
          f"{in_llvm:.1f} s in LLVM, {sum(count.values())} compilations")
    for name, seconds in own.most_common(args.top):
        print(f"{seconds:7.2f} s  x{count[name]}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
