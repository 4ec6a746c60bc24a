"""Hybrid tween→backprop against pure tween and pure backprop, per layer kind.

Usage: ``python -m bench.hybrid [--seeds N] [--quick]``. For each network (Dense, Conv2D, RNN,
LSTM, attention) on a synthetic task made for it, every arm learns from the same stream and is
scored on clean held-out data, as mean ± std over seeds 0..N-1:

- ``tween``: chain-rule tween online over the whole budget (library defaults);
- ``backprop``: online backprop (SGD) over the whole budget;
- ``hybrid (online)``: tween over the first half, then ``set_phase("backprop")`` and online
  backprop over the second half;
- ``hybrid (refine)``: tween over the first half into a replay reservoir, then ``refine()``
  (minibatch Adam) on that reservoir and ``replace_params``;
- ``backprop→refine``: the same as ``hybrid (refine)`` with online backprop in the first half,
  so the refine arms differ only in the rule of their first half.

The Markdown table and its notes are printed and written to ``build/hybrid.md``. Data is made
in-process with NumPy; every seed is fixed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bench.accuracy.common import provenance
from tweenstream import Dense, Learner, Network
from tweenstream.models import LSTM, RNN, Conv2D, Flatten, MaxPool2D, MultiHeadAttention
from tweenstream.runtime.refine import RefineResult, RefineSettings, refine

Data = tuple[np.ndarray, np.ndarray, np.ndarray]  # X, noisy training labels, clean labels
ARMS = ("tween", "backprop", "hybrid (online)", "hybrid (refine)", "backprop→refine")
STEPS, SEQ_FEATURES, ATTN_FEATURES, SIDE = 8, 4, 16, 8
DENSE_NOISE, PIXEL_NOISE, HOLDOUT = 0.10, 0.5, 0.2
OUTPUT = Path("build/hybrid.md")


@dataclass(frozen=True)
class Task:
    """A network, the task it learns, and the generator of its data."""

    network: str
    description: str
    build: Callable[[], Network]
    make: Callable[[np.random.Generator, int], Data]


@dataclass(frozen=True)
class Budget:
    """Samples per arm and the settings every arm shares."""

    train: int = 20_000
    test: int = 2_000
    refine_epochs: int = 2
    learning_rate: float | None = None  # None: the library's optimiser and rate (Adam)
    momentum: float = 0.0  # with learning_rate: plain SGD with this momentum
    refine_lr: float = 0.01
    refine_batch: int = 64

    @property
    def half(self) -> int:
        """Samples in the first phase of the hybrid and refine arms."""
        return self.train // 2

    @property
    def refine_rows(self) -> int:
        """Reservoir rows refine trains on (the rest is its early-stopping hold-out)."""
        return self.half - max(1, round(HOLDOUT * self.half))


@dataclass
class Outcome:
    """Held-out accuracy of one arm in one run, and what went wrong in it."""

    accuracy: float
    constant: bool = False
    explosions: int = 0
    rollbacks: int = 0
    refine_epochs: int = 0
    refine_gain: tuple[float, float] | None = None  # refine's hold-out accuracy before, after


@dataclass
class Row:
    """Every seed's results for one task."""

    key: str
    task: Task
    majority: list[float] = field(default_factory=list)
    arms: dict[str, list[Outcome]] = field(default_factory=lambda: {a: [] for a in ARMS})


# --- tasks ------------------------------------------------------------------------------------
def _flip(rng: np.random.Generator, y: np.ndarray, share: float) -> np.ndarray:
    """``y`` (binary) with a random ``share`` of its labels flipped."""
    return np.where(rng.random(len(y)) < share, 1 - y, y)


def xor_data(rng: np.random.Generator, n: int) -> Data:
    """Quadrant XOR: class sign(x0)·sign(x1) > 0 on 8 uniform inputs, 10% training noise."""
    X = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return X, _flip(rng, y, DENSE_NOISE), y


def blob_data(rng: np.random.Generator, n: int) -> Data:
    """A bright 2x2 blob inside one quadrant of an 8x8 noisy image; the class is the quadrant."""
    quadrant = rng.integers(0, 4, n)
    half = SIDE // 2
    r = (quadrant // 2) * half + rng.integers(0, half - 1, n)
    c = (quadrant % 2) * half + rng.integers(0, half - 1, n)
    img = rng.normal(0.0, PIXEL_NOISE, (n, SIDE, SIDE)).astype(np.float32)
    rows = np.arange(n)
    for dr in (0, 1):
        for dc in (0, 1):
            img[rows, r + dr, c + dc] += 1.0
    return img.reshape(n, -1), quadrant, quadrant


def running_sum_data(features: int) -> Callable[[np.random.Generator, int], Data]:
    """Sequences of 8 steps x ``features`` normal values; class: sum over t of x[t, 0] > 0."""
    def make(rng: np.random.Generator, n: int) -> Data:
        X = rng.standard_normal((n, STEPS, features)).astype(np.float32)
        y = (X[:, :, 0].sum(axis=1) > 0).astype(np.int64)
        return X.reshape(n, -1), y, y
    return make


SEQ_TASK = "sign of the running sum of feature 0 over 8 steps"
TASKS = {
    "dense": Task("Dense 8→32 (linear) →32 tanh →2",
                  "quadrant XOR sign(x0)·sign(x1), 6 distractors, 10% label noise", lambda: Network(
                      8, [Dense(32), Dense(32, "tanh"), Dense(2)]), xor_data),
    "conv2d": Task("Conv2D(8, 3, same, relu) → MaxPool2D(2) → Dense(4) on 8x8x1",
                   f"quadrant of a 2x2 blob, pixel noise σ {PIXEL_NOISE}", lambda: Network(
                       (SIDE, SIDE, 1), [Conv2D(8, 3, padding="same", activation="relu"),
                                         MaxPool2D(2), Flatten(), Dense(4)]), blob_data),
    "rnn": Task("RNN(32) → Dense(2) on (8, 4)", f"{SEQ_TASK}, 3 distractors",
                lambda: Network((STEPS, SEQ_FEATURES), [RNN(32), Dense(2)]),
                running_sum_data(SEQ_FEATURES)),
    "lstm": Task("LSTM(32) → Dense(2) on (8, 4)", f"{SEQ_TASK}, 3 distractors",
                 lambda: Network((STEPS, SEQ_FEATURES), [LSTM(32), Dense(2)]),
                 running_sum_data(SEQ_FEATURES)),
    "attention": Task("MultiHeadAttention(4) → Flatten → Dense(2) on (8, 16)",
                      f"{SEQ_TASK}, 15 distractors", lambda: Network(
                          (STEPS, ATTN_FEATURES), [MultiHeadAttention(4), Flatten(), Dense(2)]),
                      running_sum_data(ATTN_FEATURES)),
}


# --- arms -------------------------------------------------------------------------------------
def majority_accuracy(y: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class of ``y``."""
    return float(np.bincount(y).max() / len(y))


def score(model: Learner, X: np.ndarray, y: np.ndarray) -> Outcome:
    """Held-out accuracy of ``model``, whether it predicts one class only, and its safety
    counters. A model whose output is not finite scores NaN."""
    st = model.state()
    try:
        pred = model.predict_many(X)
    except FloatingPointError:
        return Outcome(float("nan"), True, st["explosions"], st["rollbacks"])
    return Outcome(float((pred == y).mean()), bool(len(np.unique(pred)) == 1),
                   st["explosions"], st["rollbacks"])


def learner(net: Network, mode: str, seed: int, budget: Budget, reservoir: int = 0) -> Learner:
    """A learner with the library's tween defaults and the benchmark's backprop settings:
    the library's, or SGD at ``budget.learning_rate`` with ``budget.momentum``."""
    sgd = ({} if budget.learning_rate is None else
           {"optimizer": "sgd", "learning_rate": budget.learning_rate,
            "momentum": budget.momentum})
    return Learner(net, mode=mode, seed=seed, reservoir_size=reservoir, **sgd)


def online(net: Network, first: str, second: str, seed: int, budget: Budget, X: np.ndarray,
           y: np.ndarray) -> Learner:
    """Learn the first half of the stream with rule ``first``, the rest with ``second``."""
    model = learner(net, first, seed, budget)
    model.learn_many(X[:budget.half], y[:budget.half])
    if second != first:
        model.set_phase(second)
    model.learn_many(X[budget.half:budget.train], y[budget.half:budget.train])
    return model


def refined(net: Network, first: str, seed: int, budget: Budget, X: np.ndarray, y: np.ndarray
            ) -> tuple[Learner, RefineResult]:
    """Learn the first half with ``first`` into a reservoir that keeps all of it, then refine
    the model on the reservoir with Adam and swap the result in."""
    model = learner(net, first, seed, budget, reservoir=budget.half)
    model.learn_many(X[:budget.half], y[:budget.half])
    if model.reservoir is None:
        raise RuntimeError("the learner was built without a reservoir")
    Xr, Yr = model.reservoir.data()
    settings = RefineSettings(epochs=budget.refine_epochs, batch_size=budget.refine_batch,
                              learning_rate=budget.refine_lr, optimizer="adam",
                              patience=budget.refine_epochs, holdout=HOLDOUT, threads=1,
                              seed=seed)
    result = refine(model, Xr, Yr, settings)
    model.replace_params(result.params)
    return model, result


def run_seed(row: Row, seed: int, budget: Budget) -> None:
    """Every arm of one task on one seed; appends to ``row``."""
    rng = np.random.default_rng([seed, list(TASKS).index(row.key)])
    X, y_train, _ = row.task.make(rng, budget.train)
    X_test, _, y_test = row.task.make(rng, budget.test)
    net = row.task.build()
    row.majority.append(majority_accuracy(y_test))
    for arm, (first, second) in {"tween": ("tween", "tween"),
                                 "backprop": ("backprop", "backprop"),
                                 "hybrid (online)": ("tween", "backprop")}.items():
        row.arms[arm].append(score(online(net, first, second, seed, budget, X, y_train),
                                   X_test, y_test))
    for arm, first in (("hybrid (refine)", "tween"), ("backprop→refine", "backprop")):
        model, result = refined(net, first, seed, budget, X, y_train)
        outcome = score(model, X_test, y_test)
        outcome.refine_epochs = result.epochs_run
        outcome.refine_gain = (result.before["accuracy"], result.after["accuracy"])
        row.arms[arm].append(outcome)


def run(kinds: Sequence[str], seeds: int, budget: Budget) -> list[Row]:
    """The benchmark's core: every arm of every kind in ``kinds`` over seeds 0..seeds-1."""
    rows = [Row(k, TASKS[k]) for k in kinds]
    for row in rows:
        for seed in range(seeds):
            run_seed(row, seed, budget)
    return rows


# --- report -----------------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> str:
    """``mean ± std`` (population std) to three decimals; NaNs are counted apart."""
    v = np.asarray(values, dtype=np.float64)
    ok = v[np.isfinite(v)]
    if len(ok) == 0:
        return "n/a"
    text = f"{ok.mean():.3f} ± {ok.std():.3f}"
    return text if len(ok) == len(v) else f"{text} ({len(v) - len(ok)} non-finite)"


def table(rows: Sequence[Row]) -> str:
    """The Markdown table: one line per task, accuracy mean ± std per arm."""
    head = ["network", "task", "majority", *ARMS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.task.network, row.task.description, mean_std(row.majority)]
        cells += [mean_std([o.accuracy for o in row.arms[a]]) for a in ARMS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failures(rows: Sequence[Row]) -> list[str]:
    """One note per (task, arm) with runs collapsed to one class or safety events."""
    notes = []
    for row in rows:
        for arm in ARMS:
            out = row.arms[arm]
            constant = sum(o.constant for o in out)
            events = sum(o.explosions for o in out), sum(o.rollbacks for o in out)
            if constant or any(events):
                notes.append(f"{row.key} / {arm}: {constant} of {len(out)} runs predict a single "
                             f"class on the held-out set; explosions {events[0]}, rollbacks "
                             f"{events[1]} (summed over seeds)")
    return notes


def refine_effect(rows: Sequence[Row]) -> str:
    """refine()'s own hold-out accuracy (on the reservoir) before and after, per refine arm."""
    parts = []
    for row in rows:
        for arm in ARMS:
            gains = [o.refine_gain for o in row.arms[arm] if o.refine_gain is not None]
            if gains:
                before, after = np.mean(gains, axis=0)
                parts.append(f"{row.key} {arm} {before:.3f} → {after:.3f}")
    return ("refine()'s own hold-out accuracy on its reservoir split (training labels, so "
            "10% noisy for Dense), before → after, mean over seeds: "
            + "; ".join(parts) + ".")


def notes(rows: Sequence[Row], seeds: int, budget: Budget, seconds: float,
          command: str = "python -m bench.hybrid") -> list[str]:
    """What every arm saw and the settings, as Markdown list items."""
    b, n = budget, budget.train
    refine_seen = b.refine_epochs * b.refine_rows
    lines = [
        f"Seeds 0..{seeds - 1}; accuracy on {b.test:,} held-out samples with clean labels "
        "(mean ± population std over seeds). majority = always predicting the held-out set's "
        "most frequent class.",
        f"tween, backprop, hybrid (online): each learns {n:,} distinct training samples once, "
        f"online, batch 1 (hybrid: {b.half:,} tween, then set_phase(\"backprop\") and "
        f"{n - b.half:,} backprop).",
        f"hybrid (refine), backprop→refine: {b.half:,} samples learned online (tween / "
        f"backprop), kept in a {b.half:,}-slot reservoir (all of them); refine() then runs "
        f"{b.refine_epochs} epochs × {b.refine_rows:,} reservoir rows (the other "
        f"{b.half - b.refine_rows:,} are its hold-out for picking the best epoch) = "
        f"{refine_seen:,} gradient presentations, so {b.half + refine_seen:,} presentations "
        f"of {b.half:,} distinct samples in all; the second half of the stream is not used.",
        "Tween: library defaults (chain-rule tween, tween_momentum 0.9, gradient_scale 0.1, "
        "explosion detection on; docs/tweening.md has the rates).",
        "Online backprop (backprop arm and the second half of hybrid (online)): " + (
            "the library's defaults (Adam)" if b.learning_rate is None else
            f"SGD, learning_rate {b.learning_rate}, momentum {b.momentum}")
        + ", the same for every kind.",
        f"refine(): Adam, learning_rate {b.refine_lr}, batch {b.refine_batch}, 1 thread, "
        f"hold-out {HOLDOUT}, patience {b.refine_epochs} (no early stop); best epoch by "
        "hold-out loss, including the starting weights.",
        "Sequence tasks (RNN, LSTM, attention) use the running-sum task (balanced classes), "
        "not sign parity. Attention has no positional encoding; the sum does not need one.",
        refine_effect(rows),
        provenance(command, seconds),
    ]
    return lines + failures(rows)


def render(rows: Sequence[Row], seeds: int, budget: Budget, seconds: float,
           command: str = "python -m bench.hybrid") -> str:
    """Table, then notes, as one Markdown document."""
    items = "\n".join(f"- {line}" for line in notes(rows, seeds, budget, seconds, command))
    return f"{table(rows)}\n\nNotes:\n{items}\n"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench.hybrid", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2,000 samples, 2 seeds")
    p.add_argument("--kinds", nargs="+", choices=list(TASKS), default=list(TASKS))
    p.add_argument("--lr", type=float, default=Budget.learning_rate,
                   help="plain SGD at this rate for online backprop, every kind "
                   "(default: the library's optimiser and rate)")
    p.add_argument("--momentum", type=float, default=Budget.momentum,
                   help="the SGD momentum with --lr, every kind")
    p.add_argument("--output", type=Path, default=OUTPUT)
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error("--seeds must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report and write it to ``--output``."""
    args = parse(argv)
    seeds = 2 if args.quick else args.seeds
    budget = Budget(train=2_000, test=1_000) if args.quick else Budget()
    budget = replace(budget, learning_rate=args.lr, momentum=args.momentum)
    started = time.perf_counter()
    rows = run(args.kinds, seeds, budget)
    command = " ".join(["python -m bench.hybrid", *(sys.argv[1:] if argv is None else argv)])
    report = render(rows, seeds, budget, time.perf_counter() - started, command)
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
