"""The peer comparison's Markdown table and notes, and its raw JSON records."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.accuracy.common import mean_std
from bench.peers.adapters import PEERS
from bench.peers.streams import SHAPES
from bench.report import cpu_model

Record = dict[str, Any]
COLUMNS = ("peer", "version", "shape", "params", "prequential accuracy", "µs/sample",
           "peak RSS MB", "RSS growth MB")
RAW_KEYS = ("peer", "version", "shape", "params", "seed", "samples", "prequential_accuracy",
            "us_per_sample", "peak_rss_mb", "rss_growth_mb")
DASH = "—"


@dataclass(frozen=True)
class Settings:
    """What the run was asked to do, for the notes."""

    seeds: Sequence[int]
    samples: dict[str, int]
    warmup: int
    command: str
    seconds: float = 0.0


def measured(records: Sequence[Record]) -> list[Record]:
    """The records of runs that produced a result."""
    return [r for r in records if "us_per_sample" in r]


def raw(records: Sequence[Record]) -> list[Record]:
    """What build/eval/peers.json holds: one dict per measured run, with the RAW_KEYS first
    (the extra keys rss_start_mb and warmup follow)."""
    return [{**{k: r[k] for k in RAW_KEYS}, **r} for r in measured(records)]


def speed(us: float) -> str:
    """µs per sample with three significant figures, thousands separated."""
    return f"{us:,.0f}" if us >= 100 else f"{us:.3g}"


def row(peer: str, shape: str, runs: Sequence[Record]) -> list[str]:
    """One table row: accuracy mean ± std, mean µs and RSS growth, the largest peak RSS."""
    first = runs[0]
    return [peer, first["version"], f"{shape} ({SHAPES[shape].label})", f"{first['params']:,}",
            mean_std([r["prequential_accuracy"] for r in runs]),
            speed(float(np.mean([r["us_per_sample"] for r in runs]))),
            f"{max(r['peak_rss_mb'] for r in runs):.0f}",
            f"{np.mean([r['rss_growth_mb'] for r in runs]):.1f}"]


def absent(records: Sequence[Record]) -> dict[str, str]:
    """Peers that are not installed, with the import error each gave."""
    return {r["peer"]: r["reason"] for r in records if r.get("installed") is False}


def failures(records: Sequence[Record]) -> list[Record]:
    """Runs that crashed or timed out."""
    return [r for r in records if r.get("failed")]


def table(records: Sequence[Record], peers: Sequence[str], shapes: Sequence[str]) -> str:
    """The Markdown table: shape by shape, one row per measured peer; a peer that is not
    installed gets one row saying so; a (peer, shape) whose every run failed says "failed"."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    missing = absent(records)
    ok = measured(records)
    for shape in shapes:
        for peer in peers:
            runs = [r for r in ok if r["peer"] == peer and r["shape"] == shape]
            if runs:
                lines.append("| " + " | ".join(row(peer, shape, runs)) + " |")
            elif peer not in missing and any(r["peer"] == peer and r["shape"] == shape
                                             for r in failures(records)):
                cells = [peer, "failed", shape, *[DASH] * (len(COLUMNS) - 3)]
                lines.append("| " + " | ".join(cells) + " |")
    for peer in peers:
        if peer in missing:
            cells = [peer, "not installed", DASH, *[DASH] * (len(COLUMNS) - 3)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(records: Sequence[Record], peers: Sequence[str], shapes: Sequence[str],
          settings: Settings) -> list[str]:
    """Settings, what each peer is, the streams, missing or failed peers, the machine."""
    seeds = list(settings.seeds)
    budget = ", ".join(f"{s} {settings.samples[s]:,}" for s in shapes)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {cpu_model()} ({os.cpu_count()} cores), "
        "Python "
        f"{platform.python_version()}, every peer on one thread (torch.set_num_threads(1); "
        "OMP/OpenBLAS/MKL/Numba thread counts 1). Command: "
        f"`{settings.command}`; wall time {settings.seconds:.0f} s.",
        f"Each (peer, shape, seed) ran in its own fresh process. Seeds {seeds} "
        f"({len(seeds)} seed{'s' if len(seeds) != 1 else ''}): the seed draws the stream and "
        "the model's initial weights. prequential accuracy = test-then-train accuracy (each "
        "sample predicted before it is learned), mean ± population std over seeds.",
        f"Timed samples per run: {budget}, after {settings.warmup} warm-up samples of the same "
        "stream that are neither timed nor scored (tweenstream's kernels are compiled, or "
        "loaded from the Numba cache, before them). µs/sample = wall time of the per-sample "
        "Python loop over the timed samples (time.perf_counter) / samples, mean over seeds.",
        "peak RSS = the process's peak resident set (ru_maxrss), largest over seeds: it "
        "includes the interpreter, the peer's imports and the stream. RSS growth = resident "
        "set after the timed loop minus before it (VmRSS), mean over seeds.",
        "Shapes: tanh hidden layers, softmax cross-entropy output; params = weights + "
        "biases (river-logreg: one weight per input and a bias, per class).",
    ]
    lines += [f"Stream {s} ({SHAPES[s].label}): {SHAPES[s].stream}." for s in shapes]
    lines += [f"{p}: {PEERS[p].about}." for p in peers if p in PEERS]
    lines.append("Every backprop peer uses plain SGD, learning rate 0.03, momentum 0, its "
                 "library's default initialisation; dict-API peers (deep-river, River) pay the "
                 "array → dict conversion of each sample inside the timed loop.")
    for peer, reason in absent(records).items():
        lines.append(f"{peer}: not installed ({reason}); see `python -m pydoc bench.peers` "
                     "for the install steps.")
    for r in failures(records):
        lines.append(f"{r['peer']} / {r['shape']} / seed {r['seed']} failed: {r['reason']}")
    return lines


def render(records: Sequence[Record], peers: Sequence[str], shapes: Sequence[str],
           settings: Settings) -> str:
    """Table, then notes, as one Markdown document."""
    items = "\n".join(f"- {line}" for line in notes(records, peers, shapes, settings))
    return f"{table(records, peers, shapes)}\n\nNotes:\n{items}\n"


def write(records: Sequence[Record], text: str, out_dir: Path) -> tuple[Path, Path]:
    """Write peers.md and peers.json into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "peers.md", out_dir / "peers.json"
    md.write_text(text)
    js.write_text(json.dumps(raw(records), indent=1) + "\n")
    return md, js
