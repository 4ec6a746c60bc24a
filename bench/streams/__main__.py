"""``python -m bench.streams``: the real-stream suite (see ``bench/streams/__init__.py``)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.streams import catalog, report, runs
from bench.streams.river_models import RIVER_MODELS
from bench.streams.tweenstream_models import MODES

OUT = Path("build/eval")
QUICK_LIMIT = 1_000
MODELS = (*RIVER_MODELS, *MODES)
DEFAULT_MODELS = tuple(m for m in MODELS if m != "tween-heuristic")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m bench.streams",
        description="Prequential accuracy / MAE and µs per sample of River's models and "
                    "tweenstream's modes on River's bundled and synthetic streams.")
    p.add_argument("--streams", nargs="+", choices=list(catalog.SPECS),
                   default=list(catalog.SPECS))
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(DEFAULT_MODELS),
                   help="River models and tweenstream modes (default: all but "
                        "tween-heuristic)")
    p.add_argument("--heuristic", action="store_true",
                   help="add tweenstream's tween-heuristic mode to the models")
    p.add_argument("--ways", nargs="+", choices=list(report.WAYS), default=list(report.WAYS),
                   help="how tweenstream is fed (default: both)")
    p.add_argument("--limit", type=int, default=None,
                   help="cut every stream to its first N samples (default: full lengths)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: --limit {QUICK_LIMIT} unless --limit is given")
    p.add_argument("--json", type=Path, default=OUT / "streams.json",
                   help="raw records (default build/eval/streams.json)")
    p.add_argument("--markdown", type=Path, default=OUT / "streams.md",
                   help="the table and notes (default build/eval/streams.md)")
    p.add_argument("--doc", type=Path, default=None,
                   help="also put them between the streams markers of this Markdown file "
                        "(make report: docs/benchmarks.md)")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    if args.quick and args.limit is None:
        args.limit = QUICK_LIMIT
    if args.heuristic and "tween-heuristic" not in args.models:
        args.models.append("tween-heuristic")
    return args


def collect(streams: Sequence[str], models: Sequence[str], ways: Sequence[str],
            limit: int | None, progress: Callable[[str], None] | None = None
            ) -> list[report.Record]:
    """Every (model, stream) run, each with a fresh model, in stream order."""
    records = []
    for name in streams:
        stream = catalog.load(name, limit)
        records.append(runs.trivial(stream))
        for model in models:
            for way in ("learn_one",) if model in RIVER_MODELS else ways:
                r = runs.run(model, way, stream)
                records.append(r)
                if progress:
                    got = r["reason"] if r.get("failed") else (
                        f"{report.score(r['metric'], r['value'])}, "
                        f"{report.speed(r['us_per_sample'])} µs/sample")
                    progress(f"{name:14s} {report.column(r):28s} {got}")
    return records


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite, print the table and write the Markdown and the JSON."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    started = time.perf_counter()
    records = collect(args.streams, args.models, args.ways, args.limit,
                      progress=lambda line: print(line, file=sys.stderr, flush=True))
    settings = report.Settings(shlex.join(["python", "-m", "bench.streams", *argv]),
                               args.limit, time.perf_counter() - started,
                               time.strftime("%Y-%m-%d"), tuple(os.getloadavg()))
    text = report.render(records, args.streams, args.models, settings, args.ways)
    print(text)
    report.write(records, text, args.markdown, args.json, settings)
    print(f"written: {args.markdown}, {args.json}", file=sys.stderr)
    if args.doc is not None:
        from bench.report import update

        args.doc.write_text(update(args.doc.read_text(), "streams", text.strip()))
        print(f"written: the streams section of {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
