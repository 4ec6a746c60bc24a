"""The seeds' B6 protocol: chase/avoid, a closed-loop task switch, with the action delay fixed.

    python -m bench.chase_avoid [--windows 10] [--steps-per-window 5000] [--schedule thirds]
                                [--seeds 10] [--quick] [--json build/chase_avoid.json]

Environment (the reference notes, section 6.1, Loom's Test 17). An agent starts at (0.5, 0.5)
and a target at a uniform point of [0, 1)². The observation is the 8 values (ax, ay, tx, ty,
rx = tx - ax, ry = ty - ay, |r|, task): the task id (0 chase, 1 avoid) is an input. The optimal
action to chase is, if |rx| > |ry|, +x (3) when rx > 0 else -x (2), otherwise +y (0) when
ry > 0 else -y (1); to avoid, the opposite direction of the same branch. An action moves the
agent by 0.02, clamped to [0, 1]; the target then walks U(-0.005, 0.005) per axis, clamped to
[0.1, 0.9]. Each step: observe; act (the class the model predicts, possibly delayed); record
whether the action is the optimal one for the current state; execute it; learn the sample
(observation, optimal action as class label); move the target. The target's walk does not
depend on the agent, so every arm of a seed meets the same target.

Schedule (section 10, B6, in steps): ``--windows`` x ``--steps-per-window`` steps (10 x 5,000).
``thirds`` (the default, Test 19's timing): CHASE for the first third of the steps, AVOID for
the second, CHASE after (with 50,000 steps the switches are at steps 16,667 and 33,333, inside
windows 4 and 7). ``test17``: 15 windows by default, the switches on window boundaries, after
windows 5 and 10.

Model: Dense-3L, 8 -> 64 leaky_relu -> 48 leaky_relu -> 4 classes, the library's He
initialisation and its softmax cross-entropy (Loom's output is a sigmoid trained on squared
error against the one-hot target). Every setting is the library's default, including the
online standardisation of the inputs; the protocol's learning rate 0.02 is not used.

Arms. Every arm learns one sample per step, the same samples in the same order:
- ``backprop``, ``tween``, ``hybrid``: ``learn_one`` every step, acting with no delay, and the
  same with a delay of 2 steps (the pipeline lag L - 1 of a 3-layer stepping network): the
  agent executes the class predicted 2 steps earlier, while it learns the current sample;
- ``NormalBP``: acts with the current model without delay, buffers the samples and, every 500
  steps, learns the buffer once in order (``learn_many``, one epoch of backprop), then clears
  it. The last, partial buffer is learned after the last step, so its count matches.
``predict_one`` answers among the classes learned so far; before the first sample is learned
(and during a delay's first steps) there is no decision and the agent takes action 0.

Baselines, which do not learn (section 6.4): a uniformly random action; the constant action 0;
the perfect chase policy, which ignores the task; the perfect policy with no delay, and acting
1 and 2 steps late.

Reported per arm and seed: the accuracy of each window (% of steps whose action was the optimal
one), their mean, and at each switch the window before, the window holding the switch, and the
windows from the latter until one reaches 50% (None if none does before the next switch's
window); the samples learned; for learners, the explosions and the sample at which hybrid
switched to backprop. Seeds 0..n-1 (``--seeds``, 10) seed the environment and the initial
weights. The Markdown tables give the mean over seeds of every figure, and the average ± its
standard deviation over seeds (sample std).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

FEATURES, ACTIONS = 8, 4
STEP, WALK, LOW, HIGH = 0.02, 0.005, 0.1, 0.9
#: action -> (dx, dy): 0 = +y, 1 = -y, 2 = -x, 3 = +x
MOVES = ((0.0, STEP), (0.0, -STEP), (-STEP, 0.0), (STEP, 0.0))
NO_DECISION = 0  # the action taken while there is no prediction to act on
BUFFER = 500  # NormalBP's steps between two passes over its buffer
PIPELINE_DELAY = 2  # L - 1 for the 3 layers of Dense-3L
#: learning arm -> (mode, how it learns: "step" or "buffer", action delay in steps)
LEARNERS: dict[str, tuple[str, str, int]] = {
    "backprop": ("backprop", "step", 0),
    "tween": ("tween", "step", 0),
    "hybrid": ("hybrid", "step", 0),
    "backprop, delayed": ("backprop", "step", PIPELINE_DELAY),
    "tween, delayed": ("tween", "step", PIPELINE_DELAY),
    "hybrid, delayed": ("hybrid", "step", PIPELINE_DELAY),
    "NormalBP (backprop, 1 epoch every 500)": ("backprop", "buffer", 0),
}
#: baseline -> (policy, action delay in steps)
POLICIES: dict[str, tuple[str, int]] = {
    "baseline: random action": ("random", 0),
    "baseline: constant action 0": ("constant", 0),
    "baseline: perfect chase, ignores the task": ("chase", 0),
    "baseline: perfect policy": ("perfect", 0),
    "baseline: perfect policy, 1 step late": ("perfect", 1),
    "baseline: perfect policy, 2 steps late": ("perfect", 2),
}
Decide = Callable[[int, np.ndarray, int], Any]


def optimal(rx: float, ry: float, task: int) -> int:
    """The optimal action for the offset (rx, ry) to the target; task 0 chases, 1 avoids.

    >>> optimal(0.3, -0.1, 0), optimal(0.3, -0.1, 1), optimal(0.1, -0.3, 0)
    (3, 2, 1)
    """
    if abs(rx) > abs(ry):
        toward = 3 if rx > 0 else 2
    else:
        toward = 0 if ry > 0 else 1
    return toward ^ task  # avoiding flips 0 <-> 1 and 2 <-> 3


def switch_steps(windows: int, per_window: int, schedule: str) -> tuple[int, int]:
    """The steps at which AVOID starts and CHASE returns.

    >>> switch_steps(10, 5_000, "thirds"), switch_steps(15, 5_000, "test17")
    ((16667, 33333), (25000, 50000))
    """
    if schedule == "thirds":
        steps = windows * per_window
        return round(steps / 3), round(2 * steps / 3)
    if schedule == "test17":
        return round(windows / 3) * per_window, round(2 * windows / 3) * per_window
    raise ValueError(f"schedule must be 'thirds' or 'test17', found {schedule!r}")


def tasks(steps: int, switches: tuple[int, int]) -> np.ndarray:
    """The task id of every step: 0 (CHASE), then 1 (AVOID) from the first switch to the
    second, then 0."""
    task = np.zeros(steps, np.int64)
    task[switches[0]:switches[1]] = 1
    return task


def target_path(seed: int, steps: int) -> tuple[list[float], list[float]]:
    """The target's position at every step: a uniform start, then the clamped random walk."""
    rng = np.random.default_rng(seed)
    tx, ty = rng.random(2).tolist()
    walk = rng.uniform(-WALK, WALK, (steps, 2)).tolist()
    xs, ys = [0.0] * steps, [0.0] * steps
    for t, (dx, dy) in enumerate(walk):
        xs[t], ys[t] = tx, ty
        tx, ty = min(max(tx + dx, LOW), HIGH), min(max(ty + dy, LOW), HIGH)
    return xs, ys


def play(seed: int, task: np.ndarray, decide: Decide, delay: int = 0,
         learn: Callable[[np.ndarray, int], Any] | None = None) -> np.ndarray:
    """Run the closed loop once; whether each step's action was the optimal one.

    ``decide(step, observation, optimal action)`` returns a decision (None: none yet), taken
    ``delay`` steps later; ``learn(observation, optimal action)`` is called after the action.
    """
    steps = len(task)
    xs, ys = target_path(seed, steps)
    ax = ay = 0.5
    obs = np.empty(FEATURES, np.float32)
    pending: deque[Any] = deque([None] * delay)
    correct = np.empty(steps, np.bool_)
    for t, k in enumerate(task.tolist()):
        tx, ty = xs[t], ys[t]
        rx, ry = tx - ax, ty - ay
        obs[:] = (ax, ay, tx, ty, rx, ry, math.hypot(rx, ry), k)
        best = optimal(rx, ry, k)
        decision = decide(t, obs, best)
        if delay:
            pending.append(decision)
            decision = pending.popleft()
        action = NO_DECISION if decision is None else int(decision)
        correct[t] = action == best
        dx, dy = MOVES[action]
        ax, ay = min(max(ax + dx, 0.0), 1.0), min(max(ay + dy, 0.0), 1.0)
        if learn is not None:
            learn(obs, best)
    return correct


def network():
    from tweenstream import Dense, Network

    return Network(FEATURES, [Dense(64, "leaky_relu"), Dense(48, "leaky_relu"),
                              Dense(ACTIONS)])


class Buffered:
    """NormalBP's learning: keep the samples, learn them in one pass every ``BUFFER`` steps."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.X = np.empty((BUFFER, FEATURES), np.float32)
        self.y = np.empty(BUFFER, np.int64)
        self.filled = 0

    def __call__(self, obs: np.ndarray, best: int) -> None:
        self.X[self.filled], self.y[self.filled] = obs, best
        self.filled += 1
        if self.filled == BUFFER:
            self.flush()

    def flush(self) -> None:
        if self.filled:
            self.model.learn_many(self.X[:self.filled], self.y[:self.filled])
            self.filled = 0


def summary(correct: np.ndarray, per_window: int, switches: tuple[int, int]) -> dict[str, Any]:
    """Window accuracies (%), their mean, and the window before, the window holding and the
    recovery to 50% at each switch."""
    windows = 100.0 * correct.reshape(-1, per_window).mean(axis=1)
    holding = [s // per_window for s in switches]
    found = []
    for i, (step, w) in enumerate(zip(switches, holding, strict=True)):
        end = holding[i + 1] if i + 1 < len(holding) else len(windows)
        reached = np.flatnonzero(windows[w:end] >= 50.0)
        found.append({"step": step, "before": float(windows[w - 1]), "after": float(windows[w]),
                      "windows_to_50": int(reached[0]) if reached.size else None})
    return {"windows": [float(a) for a in windows], "average": float(windows.mean()),
            "switches": found}


def run(arm: str, seed: int, task: np.ndarray, per_window: int,
        switches: tuple[int, int]) -> dict[str, Any]:
    """One learning arm on one seed."""
    from tweenstream import Learner

    mode, how, delay = LEARNERS[arm]
    model = Learner(network(), mode=mode, seed=seed)

    def decide(t: int, obs: np.ndarray, best: int) -> Any:
        return model.predict_one(obs)

    learn = model.learn_one if how == "step" else Buffered(model)
    correct = play(seed, task, decide, delay, learn)
    if isinstance(learn, Buffered):
        learn.flush()
    state = model.state()
    return {"arm": arm, "delay": delay, "seed": seed,
            **summary(correct, per_window, switches),
            "samples_learned": state["samples_seen"], "explosions": state["explosions"],
            "switched_to_backprop_at": state["switched_at"]}


def baseline(arm: str, seed: int, task: np.ndarray, per_window: int,
             switches: tuple[int, int]) -> dict[str, Any]:
    """One fixed policy on one seed."""
    policy, delay = POLICIES[arm]
    if policy not in ("random", "constant", "chase", "perfect"):
        raise ValueError(f"unknown policy {policy!r}")
    draws = np.random.default_rng((seed, 1)).integers(0, ACTIONS, len(task)).tolist()

    def decide(t: int, obs: np.ndarray, best: int) -> int:
        if policy == "random":
            return draws[t]
        if policy == "constant":
            return 0
        if policy == "chase":
            return best ^ int(obs[7])  # the chase action whatever the task
        return best

    correct = play(seed, task, decide, delay)
    return {"arm": arm, "delay": delay, "seed": seed, **summary(correct, per_window, switches),
            "samples_learned": 0}


def _std(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per arm, the mean over seeds of every window and switch figure, and the average's std."""
    out = []
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]
        windows = np.array([r["windows"] for r in mine])
        averages = np.array([r["average"] for r in mine])
        found = []
        for i, sw in enumerate(mine[0]["switches"]):
            to50 = [r["switches"][i]["windows_to_50"] for r in mine]
            reached = [v for v in to50 if v is not None]
            found.append({"step": sw["step"],
                          "before": float(np.mean([r["switches"][i]["before"] for r in mine])),
                          "after": float(np.mean([r["switches"][i]["after"] for r in mine])),
                          "windows_to_50_mean": float(np.mean(reached)) if reached else None,
                          "seeds_reaching_50": len(reached)})
        out.append({"arm": arm, "delay": mine[0]["delay"], "seed": None, "seeds": len(mine),
                    "windows": [float(w) for w in windows.mean(axis=0)],
                    "average": float(averages.mean()), "average_std": _std(averages),
                    "switches": found})
    return out


def tables(summaries: list[dict[str, Any]]) -> str:
    """Markdown: the windows and average of every arm, then its figures at each switch."""
    n = len(summaries[0]["windows"])
    lines = ["| arm | delay | " + " | ".join(f"w{i + 1}" for i in range(n)) + " | average |",
             "|---|---:|" + "---:|" * n + "---:|"]
    for s in summaries:
        cells = " | ".join(f"{w:.0f}" for w in s["windows"])
        lines.append(f"| {s['arm']} | {s['delay']} | {cells} | "
                     f"{s['average']:.1f} ± {s['average_std']:.1f} |")
    seeds = summaries[0]["seeds"]
    heads = [f"switch at step {sw['step']:,}: before → after, windows to ≥50%"
             for sw in summaries[0]["switches"]]
    lines += ["", "| arm | delay | " + " | ".join(heads) + " |",
              "|---|---:|" + "---|" * len(heads)]
    for s in summaries:
        cells = []
        for sw in s["switches"]:
            to50 = "never" if sw["windows_to_50_mean"] is None else (
                f"{sw['windows_to_50_mean']:.1f}")
            if 0 < sw["seeds_reaching_50"] < seeds:
                to50 += f" ({sw['seeds_reaching_50']}/{seeds} seeds)"
            cells.append(f"{sw['before']:.0f} → {sw['after']:.0f}, {to50}")
        lines.append(f"| {s['arm']} | {s['delay']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from bench.tune_streams import emit, save

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=int, default=None,
                   help="number of windows (10; 15 with --schedule test17)")
    p.add_argument("--steps-per-window", type=int, default=5_000)
    p.add_argument("--schedule", choices=("thirds", "test17"), default="thirds")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--quick", action="store_true",
                   help="3 windows of 300 steps, 1 seed (a smoke run)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    windows = args.windows or (15 if args.schedule == "test17" else 10)
    per_window, seeds = args.steps_per_window, args.seeds
    if args.quick:
        windows, per_window, seeds = 3, 300, 1
    if windows < 3 or per_window < 1 or seeds < 1:
        p.error("need at least 3 windows (one per phase), 1 step per window and 1 seed")
    switches = switch_steps(windows, per_window, args.schedule)
    task = tasks(windows * per_window, switches)
    out: list[dict[str, Any]] = []
    for seed in range(seeds):
        for arm in POLICIES:
            emit(out, baseline(arm, seed, task, per_window, switches))
        for arm in LEARNERS:
            emit(out, run(arm, seed, task, per_window, switches))
    summaries = aggregate(out)
    for row in summaries:
        emit(out, row)
    save(out, args.json)
    print(f"\n{windows} windows x {per_window:,} steps, schedule {args.schedule} (AVOID from "
          f"step {switches[0]:,} to {switches[1]:,}), seeds 0 to {seeds - 1}; window accuracy "
          "%, mean over seeds; average ± std over seeds\n")
    print(tables(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
