"""False triggers: how often the explosion guard fires on clean streams at the library defaults.

    python -m bench.false_triggers [--samples 50000] [--seeds 3] [--json build/false.json]

A clean stream here has no drift, no outliers and no bad values: any explosion it counts is a
false trigger (a real explosion would need a rate that is too high, and the defaults are meant
not to be). The streams are the per-kind tasks of the accuracy suite (bench/accuracy/tables.py,
one layer of each kind), each learned once, online, in tween and backprop at the library
defaults. Reported: explosions and rollbacks per 100,000 samples, storms (shadow copies rolled
back to 3 or more times) and the most rollbacks to one copy.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

KINDS = ("Dense", "LayerNorm", "SwiGLU", "Conv2D", "RNN", "LSTM", "Attention", "Conv1D",
         "Residual")
MODES = ("tween", "backprop")


def run(kind: str, mode: str, seed: int, samples: int) -> dict:
    """One kind's ×1 body learning ``samples`` clean samples; the guard's counters."""
    from bench.accuracy.tables import KINDS as SPECS
    from tweenstream import Learner

    spec = SPECS[kind]
    X, y, _ = spec.make(np.random.default_rng([seed, 7]), samples)
    model = Learner(spec.build(1), mode=mode, seed=seed)
    model.learn_many(X, y)
    st = model.state()
    return {"kind": kind, "mode": mode, "seed": seed, "samples": samples,
            "explosions": st["explosions"], "rollbacks": st["rollbacks"], "storms": st["storms"],
            "most_rollbacks_to_one_snapshot": st["most_rollbacks_to_one_snapshot"]}


def main(argv: list[str] | None = None) -> int:
    from bench.tune_streams import emit, save

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    out: list[dict] = []
    for kind in KINDS:
        for mode in MODES:
            for seed in range(args.seeds):
                emit(out, run(kind, mode, seed, args.samples))
    save(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
