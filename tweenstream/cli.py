"""The ``tweenstream`` command: ``demo`` and ``info`` (more subcommands come with the daemon)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tweenstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="learn the built-in drifting stream in-process")
    demo.add_argument("--samples", type=_positive_int, default=200_000)
    demo.add_argument("--mode", default="hybrid",
                      choices=("hybrid", "tween", "tween-heuristic", "backprop"))
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--report-every", type=_positive_int, default=20_000)
    demo.add_argument("--out", type=Path, default=Path("build/demo-model.tsm"),
                      help="where to save the learned model")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    info = sub.add_parser("info", help="describe a saved model")
    info.add_argument("model", type=Path)
    return parser


def demo(args: argparse.Namespace) -> int:
    """Learn the drifting quadrant stream with test-then-train scoring, then save the model."""
    from tqdm import tqdm

    from tweenstream import Dense, Learner, Network
    from tweenstream.stream.sources import drifting_quadrants

    net = Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)])
    model = Learner(net, mode=args.mode, seed=args.seed)
    drift_at = args.samples // 2
    print(f"tweenstream demo: {args.samples:,} samples of the drifting quadrant stream "
          f"(rule switches at {drift_at:,}); mode={args.mode}, network 8-32-32-4 tanh")
    model.learn_many(*next(drifting_quadrants(1, seed=args.seed + 1)))  # compile or load kernels
    model = Learner(net, mode=args.mode, seed=args.seed)
    bar = tqdm(total=args.samples, unit="sample", unit_scale=True, disable=args.no_progress or None,
               leave=False)
    last_seen, last_correct, last_time = 0, 0.0, time.perf_counter()
    switched_reported = False
    learn_time = 0.0
    for X, y in drifting_quadrants(args.samples, switch_at=drift_at, seed=args.seed):
        t0 = time.perf_counter()
        model.learn_many(X, y)
        learn_time += time.perf_counter() - t0
        bar.update(len(y))
        st = model.state()
        seen = st["samples_seen"]
        if st["switched_at"] is not None and not switched_reported:
            bar.write(f"  -> switched tween -> backprop at sample {st['switched_at']:,} "
                      "(prequential accuracy plateaued)")
            switched_reported = True
        if last_seen < drift_at <= seen:
            bar.write(f"  -> the labelling rule switches at sample {drift_at:,}")
        if seen - last_seen >= args.report_every or seen == args.samples:
            correct = st["prequential_accuracy"] * (seen - st["rejected"])
            now = time.perf_counter()
            bar.write(f"  {seen:>9,} samples  accuracy (last {seen - last_seen:,}) "
                      f"{(correct - last_correct) / (seen - last_seen):6.1%}  "
                      f"phase {st['phase']:<9} explosions {st['explosions']}  "
                      f"{(seen - last_seen) / (now - last_time):,.0f} samples/s")
            last_seen, last_correct, last_time = seen, correct, now
    bar.close()
    st = model.state()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"done: prequential accuracy {st['prequential_accuracy']:.1%} over {st['samples_seen']:,}"
          f" samples; explosions recovered {st['explosions']} (rollbacks {st['rollbacks']}); "
          f"learning speed {st['samples_seen'] / learn_time:,.0f} samples/s; model saved to "
          f"{args.out}")
    return 0


def info(args: argparse.Namespace) -> int:
    """Print the network, settings and counters of a saved model as JSON."""
    from tweenstream import load
    from tweenstream.runtime.persist import ModelFileError

    try:
        model = load(args.model)
    except ModelFileError as err:
        print(f"tweenstream info: {err}", file=sys.stderr)
        return 2
    st = model.state()
    out = {"network": model.network.to_dict(), "mode": model.config.mode,
           "params": model.network.param_count,
           **{k: st[k] for k in ("phase", "samples_seen", "explosions", "rollbacks")}}
    print(json.dumps(out, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tweenstream`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    return {"demo": demo, "info": info}[args.command](args)
