"""False triggers: how often the explosion guard fires on clean streams at the library defaults;
and storms: what it does when the rate is far too high.

    python -m bench.false_triggers [--samples 50000] [--seeds 3] [--json build/false.json]
    python -m bench.false_triggers --storms

A clean stream here has no drift, no outliers and no bad values: any explosion it counts is a
false trigger (a real explosion would need a rate that is too high, and the defaults are meant
not to be). The streams are the per-kind tasks of the accuracy suite (bench/accuracy/tables.py,
one layer of each kind), each learned once, online, in tween and backprop at the library
defaults. Reported: explosions and rollbacks per 100,000 samples, storms (shadow copies rolled
back to 3 or more times) and the most rollbacks to one copy.

``--storms`` runs the two storms of tests/test_explosions.py instead: a Dense 8-32-32-4 on the
4-class quadrant task (10% label noise), 6,000 samples, at ``tween_rate=10`` (33x the default)
and at backprop SGD learning rate 1.0 with momentum 0.9; it reports the rollbacks, the most to
one copy, the storms, and the accuracy on 2,000 held-out samples.
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


def storms() -> list[dict]:
    """The two too-high-rate runs of ``--storms``."""
    from bench.accuracy.tables import quadrant_data
    from tweenstream import Dense, Learner, Network

    X, y, _ = quadrant_data(np.random.default_rng(1), 6_000)
    Xt, _, yt = quadrant_data(np.random.default_rng(99), 2_000)
    rows = []
    # Loom's depth scale (1.2, the default when these runs were first published) keeps the
    # runs comparable with the commit before the storm rule
    for mode, setting in (("tween", {"tween_rate": 10.0, "depth_scale_factor": 1.2}),
                          ("backprop", {"optimizer": "sgd", "learning_rate": 1.0})):
        model = Learner(Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)]), mode=mode,
                        seed=0, **setting)
        model.learn_many(X, y)
        st = model.state()
        rows.append({"mode": mode, **setting, "rollbacks": st["rollbacks"],
                     "most_rollbacks_to_one_snapshot": st["most_rollbacks_to_one_snapshot"],
                     "storms": st["storms"],
                     "heldout": float((model.predict_many(Xt) == yt).mean())})
    return rows


def main(argv: list[str] | None = None) -> int:
    from bench.tune_streams import emit, save

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--storms", action="store_true", help="the two storms instead")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    out: list[dict] = []
    for row in storms() if args.storms else []:
        emit(out, row)
    for kind in KINDS if not args.storms else ():
        for mode in MODES:
            for seed in range(args.seeds):
                emit(out, run(kind, mode, seed, args.samples))
    save(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
