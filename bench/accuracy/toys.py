"""Toy sets: xor, moons, circles and spirals over activations × depth × residual skips.

Each network is 2 → hidden layers of 16 units → 2 classes. ``depth`` counts hidden layers;
with residual skips every hidden layer after the first is wrapped in ``Residual`` (depth 1 is
the same network either way, so it runs once). Every mode learns the same seeded stream
(``tweenstream.stream.sources.toy_set``) online and is scored on a fresh held-out draw.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.accuracy.common import (
    MODES,
    Result,
    majority,
    markdown_table,
    provenance,
    run_arm,
    settings_note,
)
from tweenstream import Dense, Network
from tweenstream.models import Residual
from tweenstream.stream.sources import TOY_SETS, toy_set

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "sine", "gelu", "silu")
DEPTHS = (1, 3, 5, 8)
WIDTH = 16


def toy_net(activation: str, depth: int, residual: bool) -> Network:
    """2 → ``depth`` hidden layers of ``WIDTH`` → 2, optionally with residual skips.

    Examples
    --------
    >>> toy_net("tanh", 3, True).n_outputs
    2
    """
    hidden = [Dense(WIDTH, activation)]
    for _ in range(depth - 1):
        layer = Dense(WIDTH, activation)
        hidden.append(Residual([layer]) if residual else layer)
    return Network(2, [*hidden, Dense(2)])


@dataclass(frozen=True)
class Budget:
    """Samples per arm, held-out samples, seeds, and the input noise of the toy sets."""

    train: int = 10_000
    test: int = 1_000
    seeds: int = 5
    noise: float = 0.1


def _test_seed(s: int, seed: int) -> int:
    return 10**6 + 1000 * s + seed


def majorities(sets: Sequence[str], budget: Budget) -> dict[str, float]:
    """Mean over seeds of the majority-class accuracy of each set's held-out draws."""
    return {name: float(np.mean([majority(toy_set(
        name, budget.test, noise=budget.noise, seed=_test_seed(TOY_SETS.index(name), seed))[1])
        for seed in range(budget.seeds)])) for name in sets}


def run(sets: Sequence[str], budget: Budget, activations: Sequence[str] = ACTIVATIONS,
        depths: Sequence[int] = DEPTHS, modes: Sequence[str] = MODES) -> list[Result]:
    """Every (set, activation, depth, skips, seed, mode); ``network`` names the first four.

    Depth 1 runs once, as "plain": with one hidden layer there is nothing to skip.
    """
    results = []
    for name in sets:
        s = TOY_SETS.index(name)  # a set's data never depends on which other sets run
        for seed in range(budget.seeds):
            X, y = toy_set(name, budget.train, noise=budget.noise, seed=1000 * s + seed)
            Xt, yt = toy_set(name, budget.test, noise=budget.noise, seed=_test_seed(s, seed))
            for act in activations:
                for depth in depths:
                    for residual in (False,) if depth == 1 else (False, True):
                        net = toy_net(act, depth, residual)
                        key = f"{name}|{act}|{depth}|{'res' if residual else 'plain'}"
                        results += [run_arm("toys", key, net, mode, seed, (X, y), (Xt, yt))
                                    for mode in modes]
    return results


FIELDS = ("set", "activation", "depth", "skip")  # the parts of a result's ``network`` key


def _mean(results: Sequence[Result], **match: str) -> float:
    """Mean held-out accuracy of the results whose key parts (FIELDS) and mode match."""
    wanted = {FIELDS.index(k): v for k, v in match.items() if k in FIELDS}
    keep = [r.heldout for r in results
            if all(r.network.split("|")[i] == v for i, v in wanted.items())
            and r.mode == match.get("mode", r.mode)]
    return float(np.nanmean(keep)) if keep else float("nan")


def render(results: Sequence[Result], budget: Budget, command: str, seconds: float) -> str:
    """Summary tables (by depth and skips, by activation) and one table per set."""
    modes = [m for m in MODES if any(r.mode == m for r in results)]
    sets, acts, depths = (list(dict.fromkeys(r.network.split("|")[i] for r in results))
                          for i in range(3))
    configs = [(d, k) for k in ("plain", "res") for d in depths if not (d == "1" and k == "res")]
    by_depth = [[d, k, *[f"{_mean(results, depth=d, skip=k, mode=m):.3f}" for m in modes]]
                for d, k in configs]
    by_act = [[a, *[f"{_mean(results, activation=a, mode=m):.3f}" for m in modes]]
              for a in acts]
    parts = ["Mean held-out accuracy over the sets, activations and seeds:", "",
             markdown_table(["depth", "skips", *modes], by_depth), "",
             "Mean over the sets, depths, skips and seeds, per activation:", "",
             markdown_table(["activation", *modes], by_act), ""]
    for s in sets:
        body = []
        for act in acts:
            for k in ("plain", "res"):
                body.append([act, k, *["same as plain" if (d, k) not in configs else " / ".join(
                    f"{_mean(results, set=s, activation=act, depth=d, skip=k, mode=m):.2f}"
                    for m in modes) for d in depths]])
        parts += [f"**{s}**, cells {' / '.join(modes)}:", "",
                  markdown_table(["activation", "skips", *[f"depth {d}" for d in depths]], body),
                  ""]
    cases = [(s, a, d, k) for s in sets for a in acts for d, k in configs]
    wins = sum(_mean(results, set=s, activation=a, depth=d, skip=k, mode="tween")
               >= _mean(results, set=s, activation=a, depth=d, skip=k, mode="backprop") - 0.01
               for s, a, d, k in cases)
    base = majorities(sets, budget)
    parts += [
        f"- {provenance(command, seconds)}",
        f"- Each cell is the mean held-out accuracy over seeds 0..{budget.seeds - 1} "
        f"({budget.test:,} samples, input noise σ {budget.noise}); every arm learns "
        f"{budget.train:,} samples online, once. Majority baseline: "
        + ", ".join(f"{k} {base[k]:.3f}" for k in sets) + ". " + settings_note(),
        f"- tween is within 0.01 of backprop or better in {wins} of {len(cases)} "
        "configurations (set × activation × depth × skips); per-seed results are in "
        "build/eval/toys.json.",
    ]
    return "\n".join(parts) + "\n"


def run_all(budget: Budget, command: str, sets: Sequence[str] = TOY_SETS,
            activations: Sequence[str] = ACTIVATIONS) -> tuple[str, list[Result]]:
    """The toy-set suite as Markdown and raw results."""
    started = time.perf_counter()
    results = run(sets, budget, activations)
    return render(results, budget, command, time.perf_counter() - started), results
