"""``tweenstream compile``: fill the compile cache ahead of time (see runtime/warmup.py).

The parser lives here, apart from ``runtime``, so that building the command line never imports
numba (``tweenstream edge`` and ``status`` run without it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def add_compile(sub: Any) -> None:
    """The ``tweenstream compile`` subcommand."""
    p = sub.add_parser("compile", help="compile the kernels ahead of time (fills the cache)")
    p.add_argument("--kinds", action="append", default=[], metavar="KIND[,KIND...]",
                   help="a set of layer kinds to compile together, as one network uses them "
                        "(repeat for several networks); default: dense")
    p.add_argument("--model", action="append", default=[], type=Path, metavar="FILE",
                   help="compile what a saved model needs")
    p.add_argument("--all", action="store_true",
                   help="one engine of every kind (what TWEENSTREAM_ENGINE=all uses)")
    p.add_argument("--heuristic", action="store_true",
                   help="include the tween-heuristic sweep (needed in that mode)")
    p.add_argument("--refine", action="store_true", help="include the kernel of refine()")
    p.add_argument("--quiet", action="store_true", help="no progress line")


def run_compile(args: Any) -> int:
    """Compile each requested kind set; print where the cache is."""
    from tweenstream.models.registry import kinds as all_kinds
    from tweenstream.runtime.engine import all_row_kinds, plan_kinds
    from tweenstream.runtime.persist import ModelFileError, load
    from tweenstream.runtime.plan import compile_plan
    from tweenstream.runtime.warmup import cache_location, compile_kinds

    sets: list[tuple[list[str], bool]] = []
    known = {k.name for k in all_kinds()}
    for text in args.kinds:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            print(f"tweenstream compile: unknown layer kind(s) {unknown or [text]}; known: "
                  f"{', '.join(sorted(known))}", file=sys.stderr)
            return 2
        if "residual" in names:  # a Residual compiles to its begin and end rows
            names = [n for n in names if n != "residual"] + ["residual_begin", "residual_end"]
        sets.append((names, args.heuristic))
    for path in args.model:
        try:
            model = load(path)
        except (ModelFileError, OSError) as err:
            print(f"tweenstream compile: {err}", file=sys.stderr)
            return 2
        heuristic = args.heuristic or model.config.mode == "tween-heuristic"
        sets.append((list(plan_kinds(compile_plan(model.network))), heuristic))
    if args.all:
        sets.append((list(all_row_kinds()), True))
    if not sets:
        sets.append((["dense"], args.heuristic))
    for names, heuristic in sets:
        compile_kinds(names, heuristic=heuristic, progress=not args.quiet, refine=args.refine)
    print(f"compile cache: {cache_location()}")
    return 0
