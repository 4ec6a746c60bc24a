"""The per-kind bodies of the accuracy suite at the library's own defaults, every mode alike.

    python -m bench.kind_defaults [--kinds RNN,LSTM] [--bodies 1,5] [--seeds 3]
                                  [--modes backprop,tween,hybrid] [--set tween_rate=1.0]
                                  [--json build/kinds.json]

The accuracy suite (``make eval``) gives backprop SGD at learning rate 0.03 without momentum;
this asks what a user gets without passing any rate: ``Learner(network, mode=mode,
seed=seed)``. The data, bodies, budget (12,000 training samples learned once, online; 2,000
held-out samples with clean labels) and seeds are the suite's (bench/accuracy/tables.py).
Reported per run: held-out accuracy, the majority-class baseline of the held-out set, whether
the model predicts a single class, explosions, storms. The kind ``Depth`` is the suite's
20-layer test (20 x (Dense + LayerNorm) on the quadrant task, 5x the samples), run once
whatever ``--bodies`` says.
``--set NAME=VALUE`` (repeatable; a number or a word) passes a setting to every arm, to compare
with the defaults.
``--motif-places A-B`` changes the Conv1D task: the motif's first step is drawn from A..B
(default 0-13, the suite's task; 6-6 puts it always at step 6).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def run(kind: str, body: int, mode: str, seed: int, places: tuple[int, int] = (0, 13),
        **settings: float | str) -> dict:
    """One arm of the per-kind table at the library defaults."""
    from bench.accuracy.common import majority
    from bench.accuracy.tables import DEPTH_BUDGET, KINDS, Budget, _data, depth_net, quadrant_data
    from tweenstream import Learner

    if kind == "Depth":
        build, make, salt, train = (lambda n: depth_net()), quadrant_data, 200, \
            DEPTH_BUDGET * Budget().train  # the suite's data (run_depth)
    else:
        spec = KINDS[kind]
        build, make, salt, train = spec.build, spec.make, list(KINDS).index(kind), Budget().train
        if kind == "Conv1D" and places != (0, 13):
            from functools import partial

            from bench.accuracy.tables import motif_data
            make = partial(motif_data, first=places[0], last=places[1])
    (X, y), (Xt, yt) = _data(make, seed, salt, Budget(), train)
    model = Learner(build(body), mode=mode, seed=seed, **settings)
    model.learn_many(X, y)
    pred = model.predict_many(Xt)
    st = model.state()
    extra = {"motif_places": list(places)} if places != (0, 13) else {}
    return {"kind": kind, "body": body, "mode": mode, "seed": seed, **settings, **extra,
            "heldout": float((pred == yt).mean()), "majority": majority(yt),
            "single_class": bool(len(np.unique(pred)) == 1),
            "explosions": st["explosions"], "storms": st["storms"],
            **({"switched_at": st["switched_at"], "races": st["races"],
                "last_race_losses": st["last_race_losses"]} if mode == "hybrid" else {})}


def _value(text: str) -> float | str:
    """A ``--set`` value: a number, or a word such as ``sgd`` or ``off``.

    >>> _value("0.003"), _value("sgd")
    (0.003, 'sgd')
    """
    try:
        return float(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> int:
    from bench.tune_streams import emit, save

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--kinds", default="Dense,Conv2D,Conv1D,RNN,LSTM,Attention,Residual")
    p.add_argument("--bodies", default="1,5")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--modes", default="backprop,tween,hybrid")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--motif-places", default="0-13", metavar="A-B")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    try:
        lo, hi = (int(v) for v in args.motif_places.split("-"))
        if not 0 <= lo <= hi <= 13:
            raise ValueError(args.motif_places)
    except ValueError:
        p.error(f"--motif-places must be A-B with 0 <= A <= B <= 13, found "
                f"{args.motif_places!r}")
    settings = {name: _value(value) for name, value in (s.split("=", 1) for s in args.set)}
    out: list[dict] = []
    for kind in args.kinds.split(","):
        bodies = [1] if kind == "Depth" else [int(b) for b in args.bodies.split(",")]
        for body in bodies:
            for mode in args.modes.split(","):
                for seed in range(args.seeds):
                    emit(out, run(kind, body, mode, seed, (lo, hi), **settings))
    save(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
