"""``python -m bench.streams.sweep``: a grid of tweenstream settings over every stream, ranked by
the gap to the best River model (the tool for picking library defaults).

Each entry of ``GRID`` is a dict of ``TweenConfig`` keyword arguments, plus ``mode`` (default
"tween") and ``activation`` (the hidden layer's, default relu); everything else of the suite
stays fixed (network, seed, streams). A config the Learner refuses (an unknown setting gives
``TypeError``, an unsupported value ``ValueError``) is reported as "not available" with the
Learner's message, so the grid may name settings that do not exist yet. Each config runs
through ``learn_many`` (the same scores as ``learn_one``, see ``python -m bench.streams``).

The River baseline (the best River model per stream) is run once, or read with ``--baseline``
from a ``build/eval/streams.json`` of the same streams and lengths. Per config the sweep
prints the mean gap over the streams, the worst stream's gap and each stream's gap (accuracy
points or % of MAE, positive = behind River; ``report.gap``), writes ``build/eval/sweep.md``
and ``build/eval/sweep.json``, and ranks the available configs by mean gap.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.accuracy.common import markdown_table, provenance
from bench.streams import catalog, report, runs
from bench.streams import tweenstream_models as tsm
from bench.streams.river_models import RIVER_MODELS

OUT = Path("build/eval")
QUICK_LIMIT = 1_000

GRID: list[dict[str, Any]] = [
    # library defaults, each mode
    {"mode": "tween"},
    {"mode": "backprop"},
    {"mode": "hybrid"},
    {"mode": "tween-heuristic"},
    # without the input stage (and, for regression, the target scaling)
    {"mode": "tween", "scaling": "off", "target_scaling": "off"},
    {"mode": "backprop", "optimizer": "sgd", "learning_rate": 0.01, "scaling": "off",
     "target_scaling": "off"},
    # backprop with SGD (heavy-ball momentum 0.9 unless given; 0.01 was the default before)
    {"mode": "backprop", "optimizer": "sgd", "learning_rate": 0.01},
    {"mode": "hybrid", "optimizer": "sgd", "learning_rate": 0.01},
    {"mode": "backprop", "optimizer": "sgd", "learning_rate": 0.003},
    {"mode": "backprop", "optimizer": "sgd", "learning_rate": 0.03, "momentum": 0.0},
    {"mode": "backprop", "optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.0},
    # backprop with Adam and AdaGrad
    {"mode": "backprop", "optimizer": "adam", "learning_rate": 0.001},
    {"mode": "backprop", "optimizer": "adam", "learning_rate": 0.003},
    {"mode": "backprop", "optimizer": "adam", "learning_rate": 0.01},
    {"mode": "backprop", "optimizer": "adagrad", "learning_rate": 0.03},
    {"mode": "backprop", "optimizer": "adagrad", "learning_rate": 0.05},
    {"mode": "backprop", "optimizer": "adagrad", "learning_rate": 0.1},
    {"mode": "backprop", "optimizer": "adagrad", "learning_rate": 0.2},
    {"mode": "backprop", "optimizer": "adam", "learning_rate": 0.005},
    # tweening rates
    {"mode": "tween", "tween_rate": 0.3},
    {"mode": "tween", "tween_rate": 0.1},
    {"mode": "tween", "gradient_scale": 0.3},
    # hybrid: its backprop phase with Adam, and an early switch
    {"mode": "hybrid", "switch_after": 1000},
    # hidden activation (the suite's network uses relu)
    {"mode": "tween", "activation": "tanh"},
    {"mode": "backprop", "activation": "tanh"},
    {"mode": "hybrid", "activation": "tanh"},
    {"mode": "tween", "tween_rate": 1.0, "activation": "tanh"},
    {"mode": "backprop", "optimizer": "sgd", "learning_rate": 0.01, "activation": "tanh"},
    {"mode": "tween", "tween_rate": 0.5},
    {"mode": "tween", "tween_rate": 1.0},
]


def label(config: dict[str, Any]) -> str:
    """A config as ``mode=tween, tween_rate=0.3``.

    Examples
    --------
    >>> label({"mode": "backprop", "learning_rate": 0.003})
    'mode=backprop, learning_rate=0.003'
    """
    return ", ".join(f"{k}={v}" for k, v in config.items()) or "defaults"


def split(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The mode and the remaining settings of a grid entry."""
    settings = dict(config)
    return settings.pop("mode", "tween"), settings


def refusal(config: dict[str, Any]) -> str | None:
    """Why the Learner refuses ``config`` (its message), or None if it takes it."""
    mode, settings = split(config)
    try:
        tsm.make_learner(2, "classification", (0, 1), mode, **settings)
    except (TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def baseline(streams: dict[str, catalog.Stream], models: Sequence[str], path: Path | None,
             progress: Any = None) -> list[report.Record]:
    """River's records for every stream: read from ``path`` (a streams.json of the same
    streams and lengths) or run now."""
    if path is not None:
        records = [r for r in json.loads(path.read_text())["records"]
                   if r["family"] == "river" and r["stream"] in streams]
        for name, stream in streams.items():
            mine = [r for r in records if r["stream"] == name]
            if not mine or any(r["samples"] != len(stream) for r in mine):
                raise ValueError(f"{path} has no River record of {name!r} over "
                                 f"{len(stream):,} samples; run the suite with the same "
                                 "--limit, or drop --baseline")
        return records
    records = []
    for name, stream in streams.items():
        for model in models:
            records.append(runs.river(model, stream))
            if progress:
                progress(f"{name:14s} {model:14s} {records[-1]['value']:.4g}")
    return records


def sweep(grid: Sequence[dict[str, Any]], streams: dict[str, catalog.Stream],
          river: Sequence[report.Record], progress: Any = None, seeds: int = 1
          ) -> list[dict[str, Any]]:
    """Every config over every stream and ``seeds`` weight seeds (``tsm.SEED`` on): its
    records, per-stream gaps (mean over seeds), mean and worst gap."""
    results = []
    for config in grid:
        why = refusal(config)
        if why is not None:
            results.append({"config": config, "available": False, "reason": why})
            if progress:
                progress(f"{label(config)}: not available ({why})")
            continue
        mode, settings = split(config)
        start = time.perf_counter()
        records = [runs.tweenstream_many(mode, s, {**settings, "seed": tsm.SEED + k})
                   for k in range(seeds) for s in streams.values()]
        per_stream: dict[str, list[float]] = {}
        for r in records:
            best = report.best(river, "river", r["stream"])
            if best is None:
                continue
            per_stream.setdefault(r["stream"], []).append(math.inf if r.get("failed") else
                                                          report.gap(r["metric"], r["value"],
                                                                     best["value"]))
        gaps = {name: sum(v) / len(v) for name, v in per_stream.items()}
        worst = max(gaps, key=lambda s: gaps[s]) if gaps else None
        results.append({"config": config, "available": True, "records": records,
                        "gaps": gaps, "mean_gap": sum(gaps.values()) / max(len(gaps), 1),
                        "worst_stream": worst, "worst_gap": gaps[worst] if worst else math.nan,
                        "seconds": time.perf_counter() - start})
        if progress:
            last = results[-1]
            progress(f"{label(config)}: mean gap {last['mean_gap']:+.1f}, worst "
                     f"{last['worst_gap']:+.1f} ({worst})")
    return results


def _pct(v: float) -> str:
    return "failed" if math.isinf(v) else f"{v:+.1f}"


def render(results: Sequence[dict[str, Any]], streams: Sequence[str], river: Sequence[
           report.Record], command: str, seconds: float) -> str:
    """The ranked table of available configs, then the ones not available, then notes."""
    done = sorted((r for r in results if r["available"]), key=lambda r: r["mean_gap"])
    head = ["rank", "config", "mean gap", "worst gap (stream)", *streams]
    rows = [[i + 1, label(r["config"]), _pct(r["mean_gap"]),
             f"{_pct(r['worst_gap'])} ({r['worst_stream']})",
             *[_pct(r["gaps"][s]) if s in r["gaps"] else report.DASH for s in streams]]
            for i, r in enumerate(done)]
    best = [report.best(river, "river", s) for s in streams]
    baseline_line = ", ".join(f"{s} {b['model']} {report.score(b['metric'], b['value'])}"
                              for s, b in zip(streams, best, strict=True) if b)
    lines = [
        provenance(command, seconds),
        "Gap = how far the config is behind the best River model of the stream: accuracy "
        "points (classification) or % of River's MAE (regression); negative = ahead. Mean gap "
        "averages the streams' gaps (points and % together); a failed run counts as an "
        "infinite gap. Every config runs through one `learn_many` call per stream, fresh "
        f"learner, seeds {tsm.SEED} on (--seeds, gaps averaged), network n -> "
        f"Dense({tsm.HIDDEN}, activation) -> outputs.",
        f"Best River per stream: {baseline_line}.",
    ]
    lines += [f"Not available: {label(r['config'])} ({r['reason']})."
              for r in results if not r["available"]]
    items = "\n".join(f"- {line}" for line in lines)
    return f"{markdown_table(head, rows)}\n\nNotes:\n{items}\n"


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (a failed run's gap) written as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench.streams.sweep",
                                description="tweenstream settings against River, per stream.")
    p.add_argument("--streams", nargs="+", choices=list(catalog.SPECS),
                   default=list(catalog.SPECS))
    p.add_argument("--river", nargs="+", choices=list(RIVER_MODELS), default=list(RIVER_MODELS),
                   help="River models of the baseline (default: all)")
    p.add_argument("--baseline", type=Path, default=None,
                   help="read River's records from this streams.json instead of running them")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seeds", type=int, default=1,
                   help="weight seeds per config (gaps are averaged over them)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: --limit {QUICK_LIMIT} unless --limit is given")
    p.add_argument("--json", type=Path, default=OUT / "sweep.json")
    p.add_argument("--markdown", type=Path, default=OUT / "sweep.md")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    if args.quick and args.limit is None:
        args.limit = QUICK_LIMIT
    return args


def main(argv: Sequence[str] | None = None, grid: Sequence[dict[str, Any]] = GRID) -> int:
    """Run the grid, print the ranked table, write sweep.md and sweep.json."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    started = time.perf_counter()
    streams = {s: catalog.load(s, args.limit) for s in args.streams}
    river = baseline(streams, args.river, args.baseline, _progress)
    results = sweep(grid, streams, river, _progress, args.seeds)
    command = shlex.join(["python", "-m", "bench.streams.sweep", *argv])
    text = render(results, args.streams, river, command, time.perf_counter() - started)
    print(text)
    for path in (args.markdown, args.json):
        path.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(text)
    raw = {"command": command, "river": river, "results": results}
    args.json.write_text(json.dumps(_finite(raw), indent=1) + "\n")
    print(f"written: {args.markdown}, {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
