"""``python -m bench.peers``: the peer comparison (see ``bench/peers/__init__.py``)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.peers import harness, report
from bench.peers.adapters import PEERS
from bench.peers.one import WARMUP
from bench.peers.streams import SHAPES

OUT_DIR = Path("build/eval")
QUICK_SCALE = 0.1


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m bench.peers",
        description="Prequential accuracy, µs per sample and peak RSS of tweenstream and its "
                    "peers, on the same streams and MLP shapes.")
    p.add_argument("--peers", nargs="+", choices=list(PEERS), default=list(PEERS),
                   help="peers to run (default: all; missing ones are listed as not installed)")
    p.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--samples-scale", type=float, default=1.0,
                   help="multiply every shape's timed samples (default: " + ", ".join(
                       f"{k} {s.samples:,}" for k, s in SHAPES.items()) + ")")
    p.add_argument("--warmup", type=int, default=WARMUP,
                   help=f"untimed, unscored samples before the timed ones (default {WARMUP})")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: 1 seed, samples x {QUICK_SCALE}")
    p.add_argument("--output-dir", type=Path, default=OUT_DIR,
                   help=f"where peers.md and peers.json go (default {OUT_DIR})")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.samples_scale <= 0 or args.warmup < 0:
        p.error("--seeds must be >= 1, --samples-scale > 0 and --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every (peer, shape, seed), print the report and write peers.md and peers.json."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    seeds = [0] if args.quick else list(range(args.seeds))
    scale = args.samples_scale * (QUICK_SCALE if args.quick else 1.0)
    samples = {k: max(1, round(s.samples * scale)) for k, s in SHAPES.items()}
    started = time.perf_counter()
    todo = harness.jobs(args.peers, args.shapes, seeds, samples, args.warmup)
    records = harness.collect(todo, progress=lambda line: print(line, file=sys.stderr))
    settings = report.Settings(seeds, samples, args.warmup,
                               shlex.join(["python", "-m", "bench.peers", *argv]),
                               time.perf_counter() - started)
    text = report.render(records, args.peers, args.shapes, settings)
    print(text)
    md, js = report.write(records, text, args.output_dir)
    print(f"written: {md}, {js}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
