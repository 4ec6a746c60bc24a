"""Command line of the evaluation suite: ``python -m bench.accuracy SUITE [options]``.

Suites: ``tables`` (per-kind bodies, quadrant task, 20-layer depth test), ``toys``, ``switch``
(A→B→A), ``traces`` (gap and link budget of the 20-layer stack), ``hybrid`` (bench/hybrid.py),
``all`` (every one of them), ``plots`` (PNGs from the results; needs matplotlib) and
``report`` (writes every result into docs/benchmarks.md). Results go to ``build/eval``.
``--quick`` runs a few hundred samples and one seed, to check that the scripts work.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench import hybrid
from bench.accuracy import common, publish, switch, tables, toys, traces

SUITES = ("tables", "toys", "switch", "traces", "hybrid")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; bad values are refused with a clear message."""
    p = argparse.ArgumentParser(prog="python -m bench.accuracy",
                                description=__doc__.split("\n")[0])
    p.add_argument("suite", choices=(*SUITES, "all", "plots", "report"))
    p.add_argument("--quick", action="store_true", help="tiny budget, one seed (smoke run)")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default per suite)")
    p.add_argument("--kinds", nargs="+", choices=list(tables.KINDS), default=list(tables.KINDS))
    p.add_argument("--lr", type=float, default=None,
                   help="plain SGD (no momentum) at this learning rate for online backprop "
                   "(default: the library's optimiser and rate)")
    p.add_argument("--tween-rate", type=float, default=None,
                   help="tween rate of the tween modes (default: the library's; not used by "
                   "the hybrid suite)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"results folder (default {common.OUT}, or {common.OUT}/custom for a "
                   "run with --quick, --seeds, --kinds, --lr or --tween-rate, so that `report` "
                   "never publishes it by accident)")
    p.add_argument("--doc", type=Path, default=Path("docs/benchmarks.md"),
                   help="document that `report` rewrites")
    p.add_argument("--img", type=Path, default=Path("docs/img"), help="folder of the plots")
    args = p.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        p.error(f"--seeds must be >= 1, found {args.seeds}")
    for flag, value in (("--lr", args.lr), ("--tween-rate", args.tween_rate)):
        if value is not None and not 0 < value < 10:
            p.error(f"{flag} must be in (0, 10), found {value}")
    changed = common.configure(args.lr, args.tween_rate)
    custom = (changed or args.quick or args.seeds is not None
              or list(args.kinds) != list(tables.KINDS))
    if args.out is None:
        args.out = common.OUT / "custom" if custom and args.suite in (*SUITES, "all") \
            else common.OUT
    return args


def _seeds(budget, args: argparse.Namespace, default: int):
    seeds = 1 if args.quick else (args.seeds or default)
    return replace(budget, seeds=seeds)


def run_suite(name: str, args: argparse.Namespace, command: str) -> Path:
    """Run one suite and write its Markdown (and raw JSON) under ``args.out``."""
    q = args.quick
    if name == "tables":
        b = _seeds(tables.Budget(train=400, test=200, window=100) if q else tables.Budget(),
                   args, 10)
        md, res = tables.run_all(args.kinds, b, command)
        return common.write("tables", md, res, args.out, window=b.window)
    if name == "toys":
        b = _seeds(toys.Budget(train=300, test=100) if q else toys.Budget(), args, 5)
        sets = toys.TOY_SETS[:1] if q else toys.TOY_SETS
        md, res = toys.run_all(b, command, sets, ("tanh",) if q else toys.ACTIVATIONS)
        return common.write("toys", md, res, args.out)
    if name == "switch":
        b = _seeds(switch.Budget(phase=400, window=100, test=200) if q else switch.Budget(),
                   args, 10)
        md, res = switch.run_all(b, command)
        return common.write("switch", md, res, args.out, window=b.window, phase=b.phase)
    if name == "traces":
        b = traces.Budget(samples=400, every=100) if q else traces.Budget()
        md = traces.run_all(b, command, args.out)
        path = args.out / "traces.md"
        path.write_text(md)
        return path
    path = args.out / "hybrid.md"
    if args.tween_rate is not None:
        print("hybrid: --tween-rate is not used by bench/hybrid.py (library tween defaults)")
    hybrid.main([*(["--quick"] if q else []), "--seeds", str(args.seeds or (1 if q else 5)),
                 *(["--lr", str(args.lr)] if args.lr is not None else []),
                 "--output", str(path)])
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run what the command line asks; print where the results went."""
    args = parse(argv)
    command = "python -m bench.accuracy " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.suite == "plots":
        made = publish.plots(args.out, args.img)
        print("\n".join(str(p) for p in made) or "no plots made")
        return 0
    if args.suite == "report":
        print(f"wrote {publish.report(args.out, args.doc, args.img)}")
        return 0
    for name in SUITES if args.suite == "all" else (args.suite,):
        started = time.perf_counter()
        path = run_suite(name, args, command)
        print(f"{name}: {path} ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
