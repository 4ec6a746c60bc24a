"""Per-layer gap and link-budget traces of the 20-layer Dense+LayerNorm stack.

One learner per tween mode learns the quadrant task in chunks; after each chunk the gap (how
far a layer's output is from its target) and the link budget (how much of the target signal
survives the link into the layer) of every layer are read from ``Learner.state()``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.accuracy.common import OUT, learn_stream, learner, markdown_table, provenance
from bench.accuracy.tables import depth_net, quadrant_data


@dataclass(frozen=True)
class Budget:
    """Samples learned and how often the layers are read."""

    samples: int = 20_000
    every: int = 250
    seed: int = 0


def trace(mode: str, budget: Budget) -> dict:
    """Gap and link budget of every layer after each chunk, with the prequential curve."""
    X, y, _ = quadrant_data(np.random.default_rng([budget.seed, 300]), budget.samples)
    model = learner(depth_net(), mode, budget.seed)
    kinds = [layer["kind"] for layer in model.state()["layers"]]
    gaps, links, curve = [], [], []
    for start in range(0, budget.samples, budget.every):
        acc, _, _ = learn_stream(model, X[start:start + budget.every],
                                 y[start:start + budget.every])
        layers = model.state()["layers"]
        gaps.append([layer["gap"] for layer in layers])
        links.append([layer["link_budget"] for layer in layers])
        curve.append(acc)
    st = model.state()
    return {"mode": mode, "kinds": kinds, "every": budget.every, "gap": gaps,
            "link_budget": links, "curve": curve, "explosions": st["explosions"]}


def run(budget: Budget, modes: Sequence[str] = ("tween", "tween-heuristic")) -> list[dict]:
    """One trace per mode."""
    return [trace(m, budget) for m in modes]


def render(traces: Sequence[dict], command: str, seconds: float) -> str:
    """Gap and link budget at the first, middle and last reading of a few layers."""
    body = []
    for t in traces:
        gap, link = np.array(t["gap"]), np.array(t["link_budget"])
        n = len(t["kinds"])
        for i in sorted({0, 1, n // 2, n - 2, n - 1}):
            body.append([t["mode"], f"{i} ({t['kinds'][i]})",
                         *[f"{gap[j, i]:.3g} / {link[j, i]:.3g}"
                           for j in (0, len(gap) // 2, len(gap) - 1)]])
    mid = len(traces[0]["gap"]) // 2 * traces[0]["every"] + traces[0]["every"]
    end = len(traces[0]["gap"]) * traces[0]["every"]
    head = ["mode", "layer", f"gap / budget after {traces[0]['every']:,}",
            f"after {mid:,}", f"after {end:,}"]
    notes = [provenance(command, seconds),
             "Layers are the network's rows: 0 is the Dense 8→32 adapter, then 20 × (Dense 32 "
             "tanh, LayerNorm), then the Dense head. Full traces: build/eval/traces.json and "
             "the plot below.",
             *[f"{t['mode']}: last-chunk prequential accuracy {t['curve'][-1]:.3f}, "
               f"{t['explosions']} explosions" for t in traces]]
    return "\n".join([markdown_table(head, body), "", *[f"- {x}" for x in notes]]) + "\n"


def run_all(budget: Budget, command: str, out: Path = OUT) -> str:
    """Trace both tween modes, save the traces as JSON, return the Markdown summary."""
    started = time.perf_counter()
    traces = run(budget)
    out.mkdir(parents=True, exist_ok=True)
    (out / "traces.json").write_text(json.dumps(traces))
    return render(traces, command, time.perf_counter() - started)
