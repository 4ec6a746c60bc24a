"""The tweening tables: per-kind 1- and 5-layer bodies, the 4-class quadrant task and the
20-layer depth test, each with backprop, tween, tween-heuristic and hybrid.

Every arm of a row learns the same noisy training stream online (batch 1, one pass) and is
scored on a clean held-out set; mean ± std over seeds 0..N-1. Samples/s is the learn_many rate
after compilation. Explosions are the engine's detector firing (each one rolled back).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bench.accuracy.common import (
    MODES,
    Result,
    majority,
    markdown_table,
    mean_std,
    provenance,
    run_arm,
    settings_note,
    summary,
)
from bench.hybrid import Data, blob_data, running_sum_data
from tweenstream import Dense, Network
from tweenstream.models import (
    LSTM,
    RNN,
    Conv1D,
    Conv2D,
    Embedding,
    Flatten,
    LayerNorm,
    MaxPool2D,
    MultiHeadAttention,
    Residual,
    RMSNorm,
    SwiGLU,
)

NOISE = 0.10
QUADRANT = "4-class quadrant of (x0, x1), 6 distractors, 10% label noise"
SEQUENCE = "sign of the running sum of feature 0 over 8 steps"
IMAGE = "quadrant of a 2x2 blob in a noisy 8x8 image"


def quadrant_data(rng: np.random.Generator, n: int) -> Data:
    """8 uniform inputs; class 2*[x0 > 0] + [x1 > 0]; ``NOISE`` of training labels random.

    Examples
    --------
    >>> X, y, clean = quadrant_data(np.random.default_rng(0), 5)
    >>> X.shape, int(clean.max()) < 4
    ((5, 8), True)
    """
    X = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
    y = (2 * (X[:, 0] > 0) + (X[:, 1] > 0)).astype(np.int64)
    noisy = np.where(rng.random(n) < NOISE, rng.integers(0, 4, n), y)
    return X, noisy.astype(np.int64), y


@dataclass(frozen=True)
class Spec:
    """A network kind: how to build a body of ``n`` layers of it, and the task it learns."""

    task: str
    build: Callable[[int], Network]
    make: Callable[[np.random.Generator, int], Data]
    bodies: tuple[int, ...] = (1, 5)


def motif_data(rng: np.random.Generator, n: int, first: int = 0, last: int = 13) -> Data:
    """Noisy sequences of 16 steps; class 1 if the motif (+1.5, −1.5, +1.5) was added at a
    random place (its first step in ``first..last``). Balanced classes, clean labels (the
    noise is in the input)."""
    X = rng.normal(0.0, 0.4, (n, 16)).astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.int64)
    where = rng.integers(first, last + 1, n)
    for i in np.flatnonzero(y):
        X[i, where[i]:where[i] + 3] += np.array([1.5, -1.5, 1.5], np.float32)
    return X, y, y


def token_data(rng: np.random.Generator, n: int) -> Data:
    """Six token ids out of 10; class 1 if token 3 occurs (about 47% of sequences)."""
    X = rng.integers(0, 10, (n, 6)).astype(np.float32)
    y = (X == 3).any(axis=1).astype(np.int64)
    return X, y, y


def _adapter(body: Callable[[int], list]) -> Callable[[int], Network]:
    """Dense 8→32 tanh adapter, the body, then Dense to the 4 classes (BENCHMARKS.md)."""
    return lambda n: Network(8, [Dense(32, "tanh"), *body(n), Dense(4)])


def _recurrent(cell: type) -> Callable[[int], Network]:
    return lambda n: Network((8, 4), [*[cell(32, return_sequences=True) for _ in range(n - 1)],
                                      cell(32), Dense(2)])


KINDS = {
    "Dense": Spec(QUADRANT, _adapter(lambda n: [Dense(32, "tanh") for _ in range(n)]),
                  quadrant_data),
    "LayerNorm": Spec(QUADRANT, _adapter(lambda n: [LayerNorm() for _ in range(n)]),
                      quadrant_data),
    "RMSNorm": Spec(QUADRANT, _adapter(lambda n: [RMSNorm() for _ in range(n)]),
                    quadrant_data),
    "SwiGLU": Spec(QUADRANT, _adapter(lambda n: [SwiGLU(32) for _ in range(n)]),
                   quadrant_data),
    "Conv2D": Spec(IMAGE, lambda n: Network(
        (8, 8, 1), [*[Conv2D(8, 3, padding="same", activation="relu") for _ in range(n)],
                    MaxPool2D(2), Flatten(), Dense(4)]), blob_data),
    "RNN": Spec(SEQUENCE, _recurrent(RNN), running_sum_data(4)),
    "LSTM": Spec(SEQUENCE, _recurrent(LSTM), running_sum_data(4)),
    "Attention": Spec(SEQUENCE + " (16 features)", lambda n: Network(
        (8, 16), [*[MultiHeadAttention(4) for _ in range(n)], Flatten(), Dense(2)]),
        running_sum_data(16)),
    # appended after the others: a kind's data seed is its position in this table
    "Conv1D": Spec("motif (+1.5, −1.5, +1.5) somewhere in 16 noisy steps",
                   lambda n: Network((16, 1), [
                       *[Conv1D(8, 3, padding="same", activation="relu") for _ in range(n)],
                       Flatten(), Dense(2)]), motif_data),
    "Residual": Spec(QUADRANT, _adapter(
        lambda n: [Residual([Dense(32, "tanh")]) for _ in range(n)]), quadrant_data),
    "Embedding": Spec("whether token 3 occurs among 6 ids of 10",
                      lambda n: Network(6, [Embedding(10, 8), Flatten(), Dense(2)]),
                      token_data, (1,)),
}
# B3's Dense-4L (8→64 leaky_relu → 32 tanh → 16 leaky_relu → 4) on the quadrant task.
QUADRANT_NET = ("Dense-4L 8-64-32-16-4", lambda: Network(8, [
    Dense(64, "leaky_relu"), Dense(32, "tanh"), Dense(16, "leaky_relu"), Dense(4)]))
DEPTH_LAYERS = 20
DEPTH_BUDGET = 5  # the depth test learns 5x the kinds table's samples


def depth_net(pairs: int = DEPTH_LAYERS) -> Network:
    """Dense 8→32 tanh, ``pairs`` × (Dense 32 tanh + LayerNorm), Dense to 4 classes."""
    body = [layer for _ in range(pairs) for layer in (Dense(32, "tanh"), LayerNorm())]
    return Network(8, [Dense(32, "tanh"), *body, Dense(4)])


@dataclass(frozen=True)
class Budget:
    """Training samples per arm, held-out samples, seeds, window of the prequential curves."""

    train: int = 12_000
    test: int = 2_000
    seeds: int = 5
    window: int = 500


def _data(make: Callable, seed: int, salt: int, budget: Budget, train: int) -> tuple:
    rng = np.random.default_rng([seed, salt])
    X, y, _ = make(rng, train)
    Xt, _, yt = make(rng, budget.test)
    return (X, y), (Xt, yt)


def run_network(suite: str, name: str, build: Callable[[], Network], make: Callable,
                budget: Budget, train: int, salt: int, window: int = 0,
                modes: Sequence[str] = MODES) -> tuple[list[Result], list[float]]:
    """Every mode on every seed for one network; also the majority baseline per seed."""
    results, base = [], []
    for seed in range(budget.seeds):
        tr, te = _data(make, seed, salt, budget, train)
        base.append(majority(te[1]))
        net = build()
        results += [run_arm(suite, name, net, mode, seed, tr, te, window) for mode in modes]
    return results, base


def run_kinds(kinds: Sequence[str], bodies: Sequence[int], budget: Budget
              ) -> tuple[list[Result], dict[str, list[float]]]:
    """The per-kind table: each kind with a body of each size in ``bodies``."""
    results, bases = [], {}
    for kind in kinds:
        spec, salt = KINDS[kind], list(KINDS).index(kind)  # a kind's data never depends on
        train = budget.train                                # which other kinds run
        for n in [b for b in bodies if b in spec.bodies]:
            name = f"{kind} ×{n}"
            res, base = run_network("kinds", name, lambda s=spec, n=n: s.build(n), spec.make,
                                    budget, train, salt)
            results += res
            bases[name] = base
    return results, bases


def rows(results: Sequence[Result], bases: dict[str, list[float]], tasks: dict[str, str]
         ) -> list[list[str]]:
    """Table rows: accuracy per mode, samples/s, explosions, single-class runs."""
    out = []
    for (name,), by_mode in summary(results).items():
        cells = [name, tasks.get(name, ""), mean_std(bases[name])]
        cells += [mean_std(r.heldout for r in by_mode.get(m, [])) for m in MODES]
        cells.append(" / ".join(f"{np.mean([r.samples_per_s for r in by_mode[m]]):,.0f}"
                                for m in MODES if m in by_mode))
        cells.append(" / ".join(f"{sum(r.explosions for r in by_mode[m])} "
                                f"({sum(not np.isfinite(r.heldout) for r in by_mode[m])})"
                                for m in MODES if m in by_mode))
        cells.append(" / ".join(str(sum(r.constant for r in by_mode[m]))
                                for m in MODES if m in by_mode))
        out.append(cells)
    return out


HEAD = ["network", "task", "majority", *MODES, "samples/s (bp / tw / heur / hyb)",
        "explosions recovered (runs lost)", "single-class runs"]


def verdict(results: Sequence[Result]) -> list[str]:
    """One line per network: where each tween arm stands against backprop (negative results
    are stated as they are)."""
    lines = []
    for (name,), by_mode in summary(results).items():
        if "backprop" not in by_mode:
            continue
        bp = np.nanmean([r.heldout for r in by_mode["backprop"]])
        parts = []
        for m in ("tween", "tween-heuristic", "hybrid"):
            if m in by_mode:
                d = np.nanmean([r.heldout for r in by_mode[m]]) - bp
                lost = sum(not np.isfinite(r.heldout) for r in by_mode[m])
                parts.append(f"{m} {'+' if d >= 0 else '−'}{abs(d):.3f}"
                             + (f" ({lost} runs lost, not in the mean)" if lost else ""))
        fired = [r.switched_at for r in by_mode.get("hybrid", []) if r.switched_at is not None]
        if "hybrid" in by_mode:
            parts.append(f"hybrid switched to backprop in {len(fired)} of "
                         f"{len(by_mode['hybrid'])} runs"
                         + (f" (at sample {np.mean(fired):,.0f} on average)" if fired else ""))
        lines.append(f"{name}: against backprop, " + ", ".join(parts))
    return lines


def render_kinds(results: Sequence[Result], bases: dict[str, list[float]], budget: Budget,
                 command: str, seconds: float) -> str:
    """The per-kind table as Markdown, with its notes."""
    tasks = {f"{k} ×{n}": s.task for k, s in KINDS.items() for n in s.bodies}
    notes = [
        provenance(command, seconds),
        f"Held-out accuracy on {budget.test:,} clean samples, mean ± population std over seeds "
        f"0..{budget.seeds - 1}; every arm learns the same {budget.train:,} noisy samples "
        "online, once, batch 1.",
        "Bodies: ×1 / ×5 layers of the kind. Dense, norms and SwiGLU sit between a Dense "
        "8→32 tanh adapter and a Dense head; Conv2D is followed by MaxPool2D, Flatten, Dense; "
        "RNN/LSTM stack with return_sequences; attention and Conv1D (same padding) are "
        "followed by Flatten, Dense; Residual wraps one Dense 32 tanh per layer. Embedding "
        "can only be a network's first layer, so it has a 1-layer body only "
        "(Embedding(10, 8), Flatten, Dense).",
        settings_note(),
        "explosions recovered: detector firings summed over seeds, each rolled back to the "
        "shadow copy; runs lost: runs whose held-out output was not finite at the end. "
        "single-class runs: runs predicting one class for the whole held-out set.",
        *verdict(results),
    ]
    return "\n".join([markdown_table(HEAD, rows(results, bases, tasks)), "",
                      *[f"- {n}" for n in notes]]) + "\n"


def run_quadrant(budget: Budget) -> tuple[list[Result], list[float]]:
    """B3's Dense-4L on the 4-class quadrant task, with prequential curves."""
    name, build = QUADRANT_NET
    return run_network("quadrant", name, build, quadrant_data, budget, budget.train * 2, 100,
                       budget.window)


def run_depth(budget: Budget) -> tuple[list[Result], list[float]]:
    """The 20-layer Dense+LayerNorm stack on the quadrant task."""
    return run_network("depth", f"{DEPTH_LAYERS} × (Dense 32 tanh + LayerNorm)", depth_net,
                       quadrant_data, budget, DEPTH_BUDGET * budget.train, 200)


def milestones(results: Sequence[Result], window: int) -> str:
    """Prequential accuracy of each mode at a few points of the stream (from the curves)."""
    by_mode = next(iter(summary(results).values()))
    length = len(by_mode["backprop"][0].curve or [])
    marks = [i for i in (1, 4, 10, 20, 40, 80) if i <= length]
    head = ["mode", *[f"window to {i * window:,}" for i in marks], "held-out", "samples/s",
            "explosions"]
    body = []
    for mode, rs in by_mode.items():
        curves = np.array([r.curve for r in rs])
        body.append([mode, *[mean_std(curves[:, i - 1], 2) for i in marks],
                     mean_std(r.heldout for r in rs),
                     f"{np.mean([r.samples_per_s for r in rs]):,.0f}",
                     sum(r.explosions for r in rs)])
    return markdown_table(head, body)


def run_all(kinds: Sequence[str], budget: Budget, command: str) -> tuple[str, list[Result]]:
    """Every table of this module, as one Markdown document and the raw results."""
    started = time.perf_counter()
    kres, kbases = run_kinds(kinds, (1, 5), budget)
    kinds_md = render_kinds(kres, kbases, budget, command, time.perf_counter() - started)
    t = time.perf_counter()
    qres, qbase = run_quadrant(budget)
    quadrant_md = "\n".join([
        milestones(qres, budget.window), "",
        f"- {provenance(command, time.perf_counter() - t)}",
        f"- {QUADRANT_NET[0]} (B3's net, 4 classes), {2 * budget.train:,} noisy samples online; "
        f"windowed prequential accuracy (test-then-train, {budget.window}-sample windows, "
        "noisy labels, so 0.925 is the ceiling) and held-out accuracy on clean labels. "
        f"Majority baseline {mean_std(qbase)}.",
    ]) + "\n"
    t = time.perf_counter()
    dres, dbase = run_depth(budget)
    depth_md = "\n".join([
        markdown_table(HEAD, rows(dres, {dres[0].network: dbase}, {dres[0].network: QUADRANT})),
        "", f"- {provenance(command, time.perf_counter() - t)}",
        f"- {DEPTH_BUDGET * budget.train:,} samples per arm, otherwise the kinds table's "
        f"settings. {verdict(dres)[0]}.",
    ]) + "\n"
    doc = ("### Per-kind bodies\n\n" + kinds_md + "\n### 4-class quadrant task\n\n"
           + quadrant_md + "\n### 20-layer depth test\n\n" + depth_md)
    return doc, kres + qres + dres
