"""Turn a pytest-benchmark JSON file into the engine table of docs/benchmarks.md.

Usage: ``python -m bench.report build/bench.json [docs/benchmarks.md]``. The table replaces the
text between the ``engine`` markers of the document, so other sections are kept.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

BEGIN, END = "<!-- engine:begin -->", "<!-- engine:end -->"
PEAK_GFLOPS = 2 * 8 * 2 * 2.45  # 2 FMA pipes x 8 float32 lanes x 2 flops x 2.45 GHz
# BENCHMARKS.md, hand-written Numba loop, whole stream in one call, tanh hidden layers (µs)
HANDWRITTEN_TANH = {"A": 2.13, "B": 13.9, "C": 76.0}
TARGETS = {("A", "backprop"): "≤ 1.5", ("A", "tween"): "≤ 2", ("B", "backprop"): "≤ 8",
           ("C", "backprop"): "≤ 70"}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def table(data: dict) -> str:
    """The markdown table for one benchmark run."""
    rows: dict[tuple[str, str], dict[str, float]] = {}
    params: dict[str, int] = {}
    for b in data["benchmarks"]:
        info = b["extra_info"]
        us = b["stats"]["median"] * 1e6 / info["samples"]
        rows.setdefault((info["shape"], info["mode"]), {})[info["op"]] = us
        params[info["shape"]] = info["params"]
    lines = ["| shape | params | mode | learn_many µs/sample | target | % of FP32 peak | "
             "vs hand-written Numba (tanh) | learn_one µs | predict_one µs |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (shape, mode), ops in sorted(rows.items()):
        if mode == "any":
            continue
        many = ops.get("learn_many", float("nan"))
        gflops = 6 * params[shape] / (many * 1e-6) / 1e9
        predict = rows.get((shape, "any"), {}).get("predict_one", float("nan"))
        target = TARGETS.get((shape, mode), "")
        lines.append(
            f"| {shape} | {params[shape]:,} | {mode} | {many:.2f} | {target} "
            f"| {100 * gflops / PEAK_GFLOPS:.0f}% | {HANDWRITTEN_TANH[shape] / many:.2f}x "
            f"| {ops.get('learn_one', float('nan')):.2f} | {predict:.2f} |")
    return "\n".join(lines)


def render(data: dict) -> str:
    """The whole engine section: provenance, table, notes."""
    date = data.get("datetime", datetime.datetime.now().isoformat())[:10]
    cores = os.cpu_count()
    return "\n".join([
        BEGIN,
        f"Measured {date} on {_cpu()} ({cores} cores), Python {platform.python_version()}, "
        "one thread. Command: `make bench` (pytest-benchmark medians; learn_many over "
        "20,000 / 4,000 / 500 samples per call for A / B / C).",
        "",
        table(data),
        "",
        "% of FP32 peak counts a training step as 6 x params flops against 78.4 GFLOP/s "
        "(2 FMA pipes x 8 lanes x 2 flops x 2.45 GHz). \"vs hand-written\" is BENCHMARKS.md's "
        "hand-written Numba loop with tanh hidden layers (2.13 / 13.9 / 76 µs) divided by ours: "
        "above 1x means faster.",
        END,
    ])


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: python -m bench.report BENCH_JSON [DOC_MD]", file=sys.stderr)
        return 2
    data = json.loads(Path(argv[0]).read_text())
    doc = Path(argv[1] if len(argv) == 2 else "docs/benchmarks.md")
    text = doc.read_text() if doc.exists() else ""
    section = render(data)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text + ("\n" if text else "") + section + "\n"
    doc.write_text(text)
    print(f"wrote the engine table to {doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
