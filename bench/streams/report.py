"""The suite's Markdown table and notes, its raw JSON, and the gap to the best River model.

The gap is how far tweenstream's best mode is *behind* the best River model on a stream, in
percent: accuracy points for classification (best River accuracy minus tweenstream's, x 100),
relative MAE for regression (tweenstream's MAE / River's - 1, x 100). Negative means ahead.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.accuracy.common import machine, markdown_table
from bench.streams.catalog import SPECS
from bench.streams.river_models import RIVER_MODELS
from bench.streams.tweenstream_models import ACTIVATION, HIDDEN
from bench.streams.tweenstream_models import SEED as TS_SEED

Record = dict[str, Any]
WAYS = ("learn_one", "learn_many")
DASH = "—"


@dataclass(frozen=True)
class Settings:
    """What the run was asked to do, for the notes and the JSON's meta."""

    command: str
    limit: int | None
    seconds: float = 0.0
    date: str = ""
    load: tuple[float, ...] = field(default_factory=tuple)  # load averages at the end


def ok(records: Sequence[Record]) -> list[Record]:
    """The records of runs that produced a score."""
    return [r for r in records if not r.get("failed")]


def column(r: Record) -> str:
    """A record's column: the River model's name, or ``mode (way)`` for tweenstream."""
    return r["model"] if r["family"] == "river" else f"{r['model']} ({r['way']})"


def columns(models: Sequence[str], ways: Sequence[str] = WAYS) -> list[str]:
    """The model columns in table order: River models first, then each tweenstream mode."""
    out = [m for m in models if m in RIVER_MODELS]
    out += [f"{m} ({w})" for m in models if m not in RIVER_MODELS for w in ways]
    return out


def better(metric: str, a: float, b: float) -> bool:
    """Whether score ``a`` beats ``b`` (higher accuracy, lower MAE)."""
    return a > b if metric == "accuracy" else a < b


def best(records: Sequence[Record], family: str, stream: str) -> Record | None:
    """The best-scoring record of ``family`` on ``stream`` (the first one among equals)."""
    found: Record | None = None
    for r in ok(records):
        if r["family"] == family and r["stream"] == stream and (
                found is None or better(r["metric"], r["value"], found["value"])):
            found = r
    return found


def gap(metric: str, tweenstream: float, river: float) -> float:
    """Percent by which ``tweenstream`` is behind ``river`` (negative: ahead).

    Examples
    --------
    >>> round(gap("accuracy", 0.85, 0.90), 6), round(gap("mae", 1.2, 1.0), 6)
    (5.0, 20.0)
    """
    if metric == "accuracy":
        return 100.0 * (river - tweenstream)
    return 100.0 * (tweenstream / river - 1.0) if river > 0 else math.inf


def score(metric: str, value: float) -> str:
    """Accuracy with three decimals, MAE with three significant figures."""
    if metric == "accuracy":
        return f"{value:.3f}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def speed(us: float) -> str:
    """µs per sample with three significant figures, thousands separated."""
    return f"{us:,.0f}" if us >= 100 else f"{us:.3g}"


def _cell(records: Sequence[Record], stream: str, col: str) -> str:
    runs = [r for r in records if r["stream"] == stream and column(r) == col]
    if not runs:
        return DASH
    r = runs[0]
    if r.get("failed"):
        return "failed"
    return f"{score(r['metric'], r['value'])} / {speed(r['us_per_sample'])}"


def row(records: Sequence[Record], stream: str, cols: Sequence[str]) -> list[str]:
    """One stream's row: the model cells, best River, best tweenstream mode and the gap."""
    spec = SPECS[stream]
    n = next((r["samples"] for r in records if r["stream"] == stream), 0)
    cells = [stream, f"{'acc' if spec.metric == 'accuracy' else 'MAE'}, {n:,}"]
    base = best(records, "baseline", stream)
    cells.append(score(spec.metric, base["value"]) if base else DASH)
    cells += [_cell(records, stream, c) for c in cols]
    river, ts = best(records, "river", stream), best(records, "tweenstream", stream)
    cells.append(f"{river['model']} {score(spec.metric, river['value'])}" if river else DASH)
    cells.append(f"{ts['model']} {score(spec.metric, ts['value'])}" if ts else DASH)
    cells.append(f"{gap(spec.metric, ts['value'], river['value']):+.1f}"
                 if river and ts else DASH)
    return cells


def table(records: Sequence[Record], streams: Sequence[str], models: Sequence[str],
          ways: Sequence[str] = WAYS) -> str:
    """The Markdown table: one row per stream, one column per model (score / µs per sample)."""
    cols = columns(models, ways)
    head = ["stream", "metric, samples", "trivial", *cols, "best River", "best tweenstream",
            "gap to best River (pts / %)"]
    return markdown_table(head, [row(records, s, cols) for s in streams])


def gaps(records: Sequence[Record], streams: Sequence[str]) -> dict[str, float]:
    """Per stream, tweenstream's best mode's gap to the best River model (where both ran)."""
    out = {}
    for s in streams:
        river, ts = best(records, "river", s), best(records, "tweenstream", s)
        if river and ts:
            out[s] = gap(river["metric"], ts["value"], river["value"])
    return out


def agreement(records: Sequence[Record]) -> list[str]:
    """Where a mode's learn_one and learn_many scores differ (they learn the same samples in
    the same order from the same seed), or where learn_one's own score differs from the
    learner's counters."""
    lines = []
    done = ok(records)
    for r in done:
        if r["family"] != "tweenstream" or r["way"] != "learn_one":
            continue
        if not math.isclose(r["value"], r["counters_value"], rel_tol=1e-4, abs_tol=1e-6):
            lines.append(f"{r['model']} on {r['stream']}: predict_one scores {r['value']:.6g}, "
                         f"the learner's counters {r['counters_value']:.6g}")
        twin = [m for m in done if m["family"] == "tweenstream" and m["way"] == "learn_many"
                and m["stream"] == r["stream"] and m["model"] == r["model"]]
        if twin and not math.isclose(r["value"], twin[0]["value"], rel_tol=1e-4, abs_tol=1e-6):
            lines.append(f"{r['model']} on {r['stream']}: learn_one {r['value']:.6g}, "
                         f"learn_many {twin[0]['value']:.6g}")
    return lines


def notes(records: Sequence[Record], streams: Sequence[str], models: Sequence[str],
          settings: Settings) -> list[str]:
    """Provenance, what the streams and the models are, how scores and times were taken."""
    load = ", ".join(f"{v:.2f}" for v in settings.load)
    limit = f" --limit {settings.limit}: every stream cut to its first {settings.limit:,} " \
            "samples." if settings.limit else ""
    lines = [
        f"Measured {settings.date} on {machine()}; load average (1, 5, 15 min) at the end: "
        f"{load}. Command: `{settings.command}`; wall time {settings.seconds:.0f} s.{limit}",
        "Each cell: prequential score / µs per sample. Prequential = test-then-train in "
        "stream order over the whole stream, each model fresh: accuracy (classification) or "
        "MAE (regression). One seed (42 for the generators and the seeded models).",
        "µs per sample = wall time of the loop over the stream / samples, one thread, "
        "compile time excluded (tweenstream's kernels are warmed before the clock starts). "
        "River models and `(learn_one)` columns: per sample `predict_one(x)`, scored, then "
        "`learn_one(x, y)` on River's dicts. `(learn_many)` columns: one `learn_many(X, y)` "
        "call on the whole stream as a float64 array (column j: the feature the dict path "
        "puts in slot j; built before the clock starts), scored by the learner's own "
        "test-then-train counters "
        "(`Learner.totals()`).",
        "tweenstream: library defaults in each mode, network "
        f"`Network(n_features, [Dense({HIDDEN}, \"{ACTIVATION}\"), Dense(n_classes)])` "
        f"(regression: `Dense(1)`, task=\"regression\"), seed {TS_SEED}, the same for every "
        "stream. River's dicts and labels go to the Learner as they are; it standardises "
        "its inputs and maps the labels itself (docs/inputs.md).",
        "trivial = the prequential score of predicting the most frequent class so far "
        "(classification) or the mean target so far (regression).",
        "best tweenstream = the best-scoring mode and way. Gap to best River: how far it is "
        "behind the best River model, in accuracy points (classification) or % of River's "
        "MAE (regression); negative = ahead.",
    ]
    disagree = agreement(records)
    lines.append("A mode's learn_one and learn_many scores, and learn_one's score and the "
                 "learner's own counters, " + ("agree on every stream (same seed, same samples "
                                               "in the same order)." if not disagree else
                                               "differ where listed below."))
    lines += [f"{s}: {SPECS[s].about}." for s in streams]
    lines += [f"{m}: {RIVER_MODELS[m].about}, River defaults." for m in models
              if m in RIVER_MODELS]
    lines += [f"Disagreement: {line}." for line in disagree]
    lines += [f"{r['model']} ({r['way']}) on {r['stream']} failed: {r['reason']}"
              for r in records if r.get("failed")]
    return lines


def render(records: Sequence[Record], streams: Sequence[str], models: Sequence[str],
           settings: Settings, ways: Sequence[str] = WAYS) -> str:
    """Table, then notes, as one Markdown document."""
    items = "\n".join(f"- {line}" for line in notes(records, streams, models, settings))
    return f"{table(records, streams, models, ways)}\n\nNotes:\n{items}\n"


def write(records: Sequence[Record], text: str, markdown: Path, raw: Path,
          settings: Settings) -> None:
    """Write the Markdown and ``{"meta": ..., "records": [...]}`` as JSON."""
    for path in (markdown, raw):
        path.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(text)
    meta = {"command": settings.command, "limit": settings.limit, "seconds": settings.seconds,
            "date": settings.date, "load": list(settings.load), "machine": machine(),
            "cores": os.cpu_count()}
    raw.write_text(json.dumps({"meta": meta, "records": list(records)}, indent=1) + "\n")
