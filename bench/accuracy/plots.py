"""PNG plots of the evaluation results (needs the optional ``report`` extra: matplotlib).

Each function reads the raw results under ``build/eval`` and writes one PNG; a missing input
skips its plot. ``make_all`` returns the files it wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.accuracy.common import MODES, OUT

IMG = Path("docs/img")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure() -> tuple[Any, Any]:
    """One figure with one set of axes, the size every line plot uses."""
    return _pyplot().subplots(figsize=(7, 4))


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _curves(ax: Any, results: list[dict], window: int) -> None:
    for mode in MODES:
        curves = [r["curve"] for r in results if r["mode"] == mode and r["curve"]]
        if not curves:
            continue
        c = np.array(curves)
        x = (np.arange(c.shape[1]) + 1) * window
        mean, std = c.mean(axis=0), c.std(axis=0)
        ax.plot(x, mean, label=mode)
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("samples")
    ax.set_ylabel("prequential accuracy (window)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()


def prequential(src: Path = OUT, dst: Path = IMG) -> Path | None:
    """Prequential accuracy over samples per mode on the 4-class quadrant task."""
    raw = _load(src / "tables.json") or {"results": []}
    results = [r for r in raw["results"] if r["suite"] == "quadrant"]
    if not results:
        return None
    window = raw["meta"]["window"]
    fig, ax = _figure()
    _curves(ax, results, window)
    ax.set_title(f"{results[0]['network']}, 4-class quadrant task (mean ± std over seeds)")
    return _save(fig, dst / "prequential.png")


def task_switch(src: Path = OUT, dst: Path = IMG) -> Path | None:
    """Prequential accuracy through the A→B→A switches, per mode."""
    raw = _load(src / "switch.json")
    if not raw or not raw["results"]:
        return None
    results, window, phase = raw["results"], raw["meta"]["window"], raw["meta"]["phase"]
    fig, ax = _figure()
    _curves(ax, results, window)
    for k in (1, 2):
        ax.axvline(k * phase, color="grey", linestyle="--", linewidth=1)
    ax.set_title("Task switch A → B → A (shape A, mean ± std over seeds)")
    return _save(fig, dst / "task_switch.png")


def traces(src: Path = OUT, dst: Path = IMG) -> Path | None:
    """Heat maps of per-layer gap (log scale) and link budget over training, per tween mode."""
    data = _load(src / "traces.json")
    if not data:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(data), figsize=(6 * len(data), 7), squeeze=False)
    for j, t in enumerate(data):
        end = len(t["gap"]) * t["every"]
        extent = (0, end, len(t["kinds"]) - 0.5, -0.5)
        for i, (key, title) in enumerate((("gap", "log10 gap"), ("link_budget", "link budget"))):
            values = np.array(t[key]).T
            if key == "gap":
                values = np.log10(np.maximum(values, 1e-30))
            im = axes[i, j].imshow(values, aspect="auto", extent=extent, cmap="viridis")
            axes[i, j].set_title(f"{t['mode']}: {title}")
            axes[i, j].set_xlabel("samples")
            axes[i, j].set_ylabel("layer (row)")
            fig.colorbar(im, ax=axes[i, j])
    fig.suptitle("20 × (Dense + LayerNorm) stack on the quadrant task")
    return _save(fig, dst / "traces.png")


def cost(src: Path = OUT, dst: Path = IMG) -> Path | None:
    """µs per sample against parameter count, for tweenstream and each installed peer."""
    rows = _load(src / "peers.json")
    if not rows:
        return None
    fig, ax = _figure()
    for peer in dict.fromkeys(r["peer"] for r in rows):
        mine = sorted((r["params"], r["us_per_sample"]) for r in rows if r["peer"] == peer)
        params = sorted({p for p, _ in mine})
        us = [np.median([u for p2, u in mine if p2 == p]) for p in params]
        ax.plot(params, us, marker="o", label=peer)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("µs per sample (test-then-train)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title("Cost of one online step against network size")
    return _save(fig, dst / "cost.png")


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return path


def make_all(src: Path = OUT, dst: Path = IMG) -> list[Path]:
    """Every plot whose input exists; raises ImportError without matplotlib."""
    _pyplot()
    made = [prequential(src, dst), task_switch(src, dst), traces(src, dst), cost(src, dst)]
    return [p for p in made if p is not None]
