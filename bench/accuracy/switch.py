"""Task switching: stream task A, then task B, then A again, and watch each mode adapt.

Task A is the class of the quadrant of (x0, x1); task B the quadrant of (x2, x3), rotated by
one class, so B is not a relabelling of A (``tweenstream.stream.sources``). Labels arrive with
the sample (test-then-train, no action delay), so no delay control is needed: a learner that
copied the last label would score 0.25 here, like chance.

Per switch: the pre-switch accuracy (mean of the last 4 windows), the dip (pre-switch minus the
worst window of the next 20), and the samples until a window regains 90% of the pre-switch
accuracy. Retention is the held-out accuracy on task A at the end of phase B: what the model
still knows of A after learning B, measured on samples it never learns from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.accuracy.common import (
    MODES,
    Result,
    heldout,
    learn_stream,
    learner,
    markdown_table,
    mean_std,
    provenance,
    settings_note,
)
from tweenstream import Dense, Network

PRE, AFTER = 4, 20


def rules(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels of ``X`` under task A and task B."""
    a = 2 * (X[:, 0] > 0) + (X[:, 1] > 0)
    b = (2 * (X[:, 2] > 0) + (X[:, 3] > 0) + 1) % 4
    return a.astype(np.int64), b.astype(np.int64)


@dataclass(frozen=True)
class Budget:
    """Samples per phase (A, B, A), window of the prequential curve, seeds."""

    phase: int = 10_000
    window: int = 250
    seeds: int = 5
    test: int = 2_000


def stream(seed: int, budget: Budget) -> tuple[np.ndarray, np.ndarray]:
    """The A→B→A stream: 8 uniform inputs, labels from A, B, then A."""
    X = np.random.default_rng([seed, 7]).uniform(-1, 1, (3 * budget.phase, 8)).astype(np.float32)
    a, b = rules(X)
    phase = np.arange(len(X)) // budget.phase
    return X, np.where(phase == 1, b, a)


def net() -> Network:
    """Shape A: 8-32-32-4, tanh."""
    return Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)])


def run(budget: Budget, modes: Sequence[str] = MODES) -> list[Result]:
    """Every mode on every seed; ``curve`` is the windowed prequential accuracy.

    The held-out accuracy on task A is also read at the end of each phase (``extra``:
    ``A_after_A``, ``A_after_B``), so retention is measured on data the model never learns
    from, not on the first samples it relearns A with.
    """
    if budget.phase % budget.window:
        raise ValueError(f"phase ({budget.phase}) must be a multiple of window "
                         f"({budget.window}), or windows straddle the switches")
    results = []
    for seed in range(budget.seeds):
        X, y = stream(seed, budget)
        Xt = np.random.default_rng([seed, 8]).uniform(-1, 1, (budget.test, 8)).astype(np.float32)
        test = (Xt, rules(Xt)[0])
        for mode in modes:
            model = learner(net(), mode, seed)
            curve, seconds, after = [], 0.0, []
            for k in range(3):
                part = slice(k * budget.phase, (k + 1) * budget.phase)
                _, rate, c = learn_stream(model, X[part], y[part], budget.window)
                curve += c
                seconds += budget.phase / rate
                after.append(heldout(model, *test)[0])
            st = model.state()
            results.append(Result(
                "switch", "8-32-32-4 tanh", mode, seed, after[2], float(np.mean(curve)),
                3 * budget.phase / seconds, st["explosions"], st["rollbacks"],
                heldout(model, *test)[1], st["switched_at"], curve,
                {"A_after_A": after[0], "A_after_B": after[1]}))
    return results


@dataclass
class Switch:
    """What one run did at one switch."""

    pre: float
    dip: float
    recover: float  # samples to regain 90% of ``pre``; NaN if never in the phase
    first: float  # accuracy of the first window after the switch


def switches(curve: Sequence[float], budget: Budget) -> list[Switch]:
    """The two switches of one curve.

    Examples
    --------
    >>> b = Budget(phase=1000, window=250)
    >>> s = switches([0.9] * 4 + [0.1, 0.5, 0.85, 0.9] + [0.5, 0.9, 0.9, 0.9], b)
    >>> s[0].dip, s[0].recover, s[1].first
    (0.8, 750.0, 0.5)
    """
    per = budget.phase // budget.window
    c = np.asarray(curve, dtype=np.float64)
    out = []
    for k in (1, 2):
        start = k * per
        pre = float(c[max(start - PRE, start - per):start].mean())
        after = c[start:start + per]
        dip = round(pre - float(after[:AFTER].min()), 6)
        hit = np.flatnonzero(after >= 0.9 * pre)
        recover = float((hit[0] + 1) * budget.window) if len(hit) else float("nan")
        out.append(Switch(pre, dip, recover, float(after[0])))
    return out


def render(results: Sequence[Result], budget: Budget, command: str, seconds: float) -> str:
    """One row per mode: pre-switch level, dip, recovery, retention, safety counters."""
    body = []
    for mode in [m for m in MODES if any(r.mode == m for r in results)]:
        rs = [r for r in results if r.mode == mode]
        sw = [switches(r.curve or [], budget) for r in rs]
        a_pre = [s[0].pre for s in sw]
        body.append([
            mode, mean_std(a_pre, 2),
            mean_std((s[0].dip for s in sw), 2), _recover([s[0] for s in sw]),
            mean_std((s[1].pre for s in sw), 2), mean_std((s[1].dip for s in sw), 2),
            _recover([s[1] for s in sw]),
            mean_std((r.extra["A_after_A"] for r in rs), 2),
            mean_std((r.extra["A_after_B"] for r in rs), 2),
            mean_std((s[1].first for s in sw), 2),
            mean_std((r.prequential for r in rs), 3), mean_std((r.heldout for r in rs), 3),
            sum(r.explosions for r in rs), sum(not np.isfinite(r.heldout) for r in rs),
        ])
    head = ["mode", "A before switch", "dip A→B", "samples to 90% (B)", "B before switch",
            "dip B→A", "samples to 90% (A again)", "held-out A after A",
            "held-out A after B (retained)", "first window back on A", "prequential (all)",
            "held-out A at end", "explosions", "non-finite runs"]
    notes = [
        provenance(command, seconds),
        f"Shape A (8-32-32-4 tanh), {budget.phase:,} samples per phase (A, B, A), no label "
        f"noise; curves in {budget.window}-sample windows, mean ± std over seeds "
        f"0..{budget.seeds - 1}. Chance (and a copy-the-last-label learner) is 0.25.",
        "dip: pre-switch accuracy minus the worst of the next 20 windows. samples to 90%: "
        "until a window reaches 90% of the pre-switch accuracy (mean over the runs that did; "
        "the count that never did is given). held-out A after A / after B: accuracy on 2,000 "
        "held-out task-A samples at the end of the first and second phase; after B is what "
        "the model retained of A (chance is 0.25). first window back on A: prequential "
        "accuracy of the first window of the third phase, which the model already relearns "
        "A in.",
        settings_note() + " The trigger "
        + _switched([r for r in results if r.mode == "hybrid"]) + ".",
    ]
    return "\n".join([markdown_table(head, body), "", *[f"- {n}" for n in notes]]) + "\n"


def _recover(sw: Sequence[Switch]) -> str:
    done = [s.recover for s in sw if np.isfinite(s.recover)]
    text = f"{np.mean(done):,.0f}" if done else "never"
    missed = len(sw) - len(done)
    return text + (f" ({missed} of {len(sw)} never)" if missed and done else "")


def _switched(rs: Sequence[Result]) -> str:
    at = [r.switched_at for r in rs if r.switched_at is not None]
    if not at:
        return "it never fired"
    return f"fired in {len(at)} of {len(rs)} runs, at sample {np.mean(at):,.0f} on average"


def run_all(budget: Budget, command: str) -> tuple[str, list[Result]]:
    """The task-switch suite as Markdown and raw results."""
    started = time.perf_counter()
    results = run(budget)
    return render(results, budget, command, time.perf_counter() - started), results
