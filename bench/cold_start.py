"""Cold start: seconds from process start to the first learned sample, with an empty compile
cache (cold) and again with the cache that run filled (warm).

Each case runs in a fresh Python process with its own empty ``NUMBA_CACHE_DIR``:
- ``dense``: the README's network, 8-32-32-4 tanh, default settings (only Dense kernels compile);
- ``many-kinds``: one network of 13 of the 15 row kinds (Embedding, Conv1D, LSTM, RNN,
  attention, SwiGLU, LayerNorm, RMSNorm, Residual, Flatten, Dense; Conv2D and the pools need
  an image input, which an Embedding-first network cannot have);
- ``every-kind``: the same network under ``TWEENSTREAM_ENGINE=all``: one engine of all 15 kinds
  plus the tween-heuristic sweep (what the test suite compiles).

Run: ``python -m bench.cold_start [--json FILE]``; ``bench/test_cold_start.py`` runs the same
under pytest-benchmark (``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys, time
import numpy as np
from tweenstream import Dense, Learner, Network
from tweenstream.models import (LSTM, RNN, Conv1D, Embedding, Flatten, LayerNorm,
                                MultiHeadAttention, Residual, RMSNorm, SwiGLU)
if sys.argv[1] == "dense":
    net = Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)])
    X = np.zeros((1, 8), np.float32)
else:
    net = Network(6, [Embedding(7, 4), Conv1D(4, 3, padding="same", activation="tanh"),
                      LSTM(4, return_sequences=True), RNN(4, return_sequences=True),
                      MultiHeadAttention(2), SwiGLU(8, out=4), LayerNorm(), RMSNorm(),
                      Residual([LayerNorm()]), Flatten(), Dense(8, "tanh"), Dense(3)])
    X = np.ones((1, 6), np.float32)
model = Learner(net)
model.learn_many(X, np.zeros(1, np.int64))
assert model.state()["samples_seen"] == 1
print(time.time())
"""

CASES = {"dense": ("dense", "kinds"), "many-kinds": ("many", "kinds"),
         "every-kind": ("many", "all")}


def run_case(case: str, cache: Path) -> float:
    """Seconds from spawning a Python process to its first learned sample."""
    network, policy = CASES[case]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), TWEENSTREAM_ENGINE=policy)
    started = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, network], env=env, check=True,
                         capture_output=True, text=True, timeout=1800).stdout
    return float(out.strip().splitlines()[-1]) - started


def measure(case: str) -> dict[str, float]:
    """Cold (empty cache) then warm (the cache the cold run filled) seconds of one case."""
    with tempfile.TemporaryDirectory(prefix="tweenstream-cold-") as folder:
        cold = run_case(case, Path(folder))
        warm = run_case(case, Path(folder))
    return {"cold_s": round(cold, 2), "warm_s": round(warm, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = {}
    for case in args.cases:
        results[case] = measure(case)
        print(f"{case:<11} cold {results[case]['cold_s']:6.1f} s   warm "
              f"{results[case]['warm_s']:5.2f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
