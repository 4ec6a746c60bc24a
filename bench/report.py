"""Turn a pytest-benchmark JSON file into the tables of docs/benchmarks.md.

Usage: ``python -m bench.report build/bench.json [docs/benchmarks.md]``. Each table replaces the
text between its markers (``<!-- engine:begin -->`` ... ``<!-- engine:end -->``, and the same for
``daemon``) in the document; other text is kept, and a table with no results is left as it is.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

PEAK_GFLOPS = 2 * 8 * 2 * 2.45  # 2 FMA pipes x 8 float32 lanes x 2 flops x 2.45 GHz
# BENCHMARKS.md, hand-written Numba loop, whole stream in one call, tanh hidden layers (µs)
HANDWRITTEN_TANH = {"A": 2.13, "B": 13.9, "C": 76.0}
TARGETS = {("A", "backprop"): "≤ 1.5", ("A", "tween"): "≤ 2", ("B", "backprop"): "≤ 8",
           ("C", "backprop"): "≤ 70"}


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
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
        if info.get("table", "engine") != "engine":
            continue
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


def _provenance(data: dict, detail: str) -> str:
    date = data.get("datetime", datetime.datetime.now().isoformat())[:10]
    return (f"Measured {date} on {cpu_model()} ({os.cpu_count()} cores), Python "
            f"{platform.python_version()}. Command: `make bench` ({detail}).")


def render_engine(data: dict) -> str:
    """The engine section: provenance, table, notes."""
    return "\n".join([
        _provenance(data, "pytest-benchmark medians, one thread; learn_many over 20,000 / 4,000 "
                    "/ 500 samples per call for A / B / C"),
        "",
        table(data),
        "",
        "% of FP32 peak counts a training step as 6 x params flops against 78.4 GFLOP/s "
        "(2 FMA pipes x 8 lanes x 2 flops x 2.45 GHz). \"vs hand-written\" is BENCHMARKS.md's "
        "hand-written Numba loop with tanh hidden layers (2.13 / 13.9 / 76 µs) divided by ours: "
        "above 1x means faster.",
    ])


def render_inputs(data: dict) -> str:
    """The input-stage section: dict against array, standardisation on and off."""
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for b in data["benchmarks"]:
        info = b["extra_info"]
        if info.get("table") == "inputs":
            us = b["stats"]["median"] * 1e6 / info["samples"]
            rows.setdefault((info["form"], info["scaling"]), {})[info["op"]] = us
    lines = ["| input | standardisation | learn_one µs | predict_one µs | learn_many µs/sample |",
             "|---|---|---|---|---|"]
    for (form, scaling), ops in sorted(rows.items()):
        if form == "dict" and scaling == "n/a":
            continue
        cells = [f"{ops[k]:.2f}" if k in ops else "" for k in
                 ("learn_one", "predict_one", "learn_many")]
        lines.append(f"| {form} | {'on' if scaling == 'auto' else scaling} | "
                     + " | ".join(cells) + " |")
    read = rows.get(("dict", "n/a"), {}).get("read")
    return "\n".join([
        _provenance(data, "pytest-benchmark medians, bench/test_inputs.py: 10-32-2 tanh, backprop"),
        "",
        *lines,
        "",
        f"Reading a 10-feature dict into its slots alone: {read:.2f} µs." if read else "",
    ])


def render_daemon(data: dict) -> str:
    """The daemon section: samples/s per transport and message size, predict latency."""
    rows = [b for b in data["benchmarks"] if b["extra_info"].get("table") == "daemon"]
    learn = {(b["extra_info"]["transport"], b["extra_info"]["rows"]):
             b["extra_info"]["samples"] / b["stats"]["median"]
             for b in rows if b["extra_info"]["op"] == "learn"}
    lines = ["| transport | 1 sample/message | 64 samples/message | 1024 samples/message | "
             "predict p50 µs | p99 µs | p99.9 µs |", "|---|---|---|---|---|---|---|"]
    for transport in ("ipc", "tcp"):
        pred = next((b["extra_info"] for b in rows if b["extra_info"]["op"] == "predict"
                     and b["extra_info"]["transport"] == transport), {})
        nan = float("nan")
        rates = " | ".join(f"{learn.get((transport, n), nan):,.0f}" for n in (1, 64, 1024))
        lats = " | ".join(f"{pred.get(k, nan):.0f}" for k in ("p50", "p99", "p999"))
        lines.append(f"| {transport} | {rates} | {lats} |")
    return "\n".join([
        _provenance(data, "bench/test_daemon.py: the daemon in its own process, the producer in "
                    "another; a timed call ends when the daemon has learned every sample"),
        "",
        "Learned samples per second (shape A, tween mode, test-then-train), and single-sample "
        "predict round trips over the control socket (3,000 requests):",
        "",
        *lines,
    ])


def render_edge(data: dict) -> str:
    """The edge section: latency per way of predicting, and the int8 trade-off."""
    rows = [b["extra_info"] | {"us": b["stats"]["median"] * 1e6} for b in data["benchmarks"]
            if b["extra_info"].get("table") == "edge"]
    ways = ("engine", "ort-fp32", "edge-ipc", "ort-int8")
    head = " | ".join(f"{w} b{n}" for n in (1, 64) for w in ways)
    lines = [f"| shape | {head} | fp32 bytes | int8 bytes | fp32 acc | int8 acc |",
             "|---" * (5 + 2 * len(ways)) + "|"]
    for shape in sorted({r["shape"] for r in rows}):
        mine = {(r["how"], r["batch"]): r for r in rows if r["shape"] == shape}
        cells = [f"{mine[(w, n)]['us']:.1f}" if (w, n) in mine else "" for n in (1, 64)
                 for w in ways]
        q = mine.get(("ort-int8", 1), {})
        extra = [f"{q.get('fp32_bytes', 0):,}", f"{q.get('int8_bytes', 0):,}",
                 f"{q.get('fp32_accuracy', float('nan')):.3f}",
                 f"{q.get('int8_accuracy', float('nan')):.3f}"]
        lines.append(f"| {shape} | {' | '.join(cells)} | {' | '.join(extra)} |")
    return "\n".join([
        _provenance(data, "bench/test_edge.py: pytest-benchmark medians in µs per call; b1 = one "
                    "sample, b64 = a batch of 64; engine = the compiled forward via "
                    "predict_one / predict_proba_many; ort = onnxruntime in-process; edge-ipc = "
                    "a round trip to `tweenstream edge` over ipc"),
        "",
        *lines,
        "",
        "Accuracies are held-out (2,000 samples) on a synthetic task each shape learned for "
        "20,000 / 10,000 / 3,000 samples (A / B / C).",
    ])


def render_kinds(data: dict) -> str:
    """One representative network per layer kind: µs per sample."""
    rows: dict[str, dict[str, float]] = {}
    params: dict[str, int] = {}
    for b in data["benchmarks"]:
        info = b["extra_info"]
        if info.get("table") != "kinds":
            continue
        key = info["op"] if info["op"] == "predict_one" else f"{info['op']} {info['mode']}"
        rows.setdefault(info["kind"], {})[key] = b["stats"]["median"] * 1e6 / info["samples"]
        params[info["kind"]] = info["params"]
    lines = ["| kind (network in bench/test_kinds.py) | params | learn_many backprop µs/sample | "
             "learn_many tween µs/sample | predict_one µs |", "|---|---|---|---|---|"]
    nan = float("nan")
    for kind, ops in rows.items():
        cells = [f"{ops.get(k, nan):.2f}" for k in ("learn_many backprop", "learn_many tween",
                                                    "predict_one")]
        lines.append(f"| {kind} | {params[kind]:,} | {' | '.join(cells)} |")
    return "\n".join([_provenance(data, "bench/test_kinds.py: pytest-benchmark medians; "
                                   "learn_many over 2,000 samples per call"), "", *lines])


def render_refine(data: dict) -> str:
    """Refinement throughput: training samples per second in one epoch."""
    rates: dict[tuple[str, str, int], dict[int, float]] = {}
    step = {}
    for b in data["benchmarks"]:
        info = b["extra_info"]
        if info.get("table") == "refine" and info["how"] == "learn_one":
            step[info["reservoir"]] = b["stats"]["median"] * 1e6
        elif info.get("table") == "refine":
            key = (info["shape"], info["how"], info["batch"])
            rates.setdefault(key, {})[info["threads"]] = info["samples"] / b["stats"]["median"]
    lines = ["| shape | how | batch | 1 thread samples/s | 2 threads samples/s | speed-up |",
             "|---|---|---|---|---|---|"]
    nan = float("nan")
    for (shape, how, batch), r in sorted(rates.items()):
        one, two = r.get(1, nan), r.get(2, nan)
        lines.append(f"| {shape} | {how} | {batch} | {one:,.0f} | {two:,.0f} | "
                     f"{two / one:.2f}x |")
    return "\n".join([
        _provenance(data, "bench/test_refine.py: one epoch of minibatch backprop on "
                    "8,000 (B) / 2,000 (C) reservoir rows, 80% trained on, the rest held out; "
                    "direct = refine() in-process, server = a whole job through a "
                    "refine-server over loopback tcp"),
        "",
        "Training samples per second per epoch (held-out evaluation and, for server, the "
        "transfer of weights and reservoir both ways included):",
        "",
        *lines,
        "",
        f"Keeping a 1,000-sample replay reservoir makes one online step (learn_one, shape A, "
        f"tween) take {step.get(1_000, float('nan')):.2f} µs instead of "
        f"{step.get(0, float('nan')):.2f} µs.",
    ])


def render_cold(data: dict) -> str:
    """Cold start: seconds from process start to the first learned sample."""
    targets = {"dense": "≤ 20", "many-kinds": "≤ 60", "every-kind": "≤ 60"}
    lines = ["| case | cold s (empty cache) | target | warm s (cache filled) | target |",
             "|---|---|---|---|---|"]
    for b in data["benchmarks"]:
        info = b["extra_info"]
        if info.get("table") != "cold":
            continue
        lines.append(f"| {info['case']} | {info['cold_s']:.1f} | {targets.get(info['case'], '')}"
                     f" | {info['warm_s']:.2f} | ≤ 1 |")
    return "\n".join([_provenance(data, "bench/test_cold_start.py, one cold and one warm run per "
                                   "case in fresh processes; also `python -m bench.cold_start`"),
                      "", *lines])


SECTIONS = {"engine": render_engine, "daemon": render_daemon, "edge": render_edge,
            "kinds": render_kinds, "refine": render_refine, "cold": render_cold,
            "inputs": render_inputs}


def update(text: str, name: str, body: str) -> str:
    """Replace the text between the markers of section ``name`` (appending them if absent)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        return head + section + rest.split(end, 1)[1]
    return text + ("\n" if text else "") + section + "\n"


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: python -m bench.report BENCH_JSON [DOC_MD]", file=sys.stderr)
        return 2
    data = json.loads(Path(argv[0]).read_text())
    doc = Path(argv[1] if len(argv) == 2 else "docs/benchmarks.md")
    text = doc.read_text() if doc.exists() else ""
    present = {b["extra_info"].get("table", "engine") for b in data["benchmarks"]}
    for name, render in SECTIONS.items():
        if name in present:
            text = update(text, name, render(data))
    doc.write_text(text)
    print(f"wrote {', '.join(sorted(present & set(SECTIONS)))} to {doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
