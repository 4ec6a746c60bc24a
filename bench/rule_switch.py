"""The seeds' B8 protocol, "Harmonic Chameleon": a regression stream whose rule switches.

    python -m bench.rule_switch [--seeds 10] [--json build/rule_switch.json]

As the reference notes write it (section 10, B8), in steps: 3,000 steps; x_t = sin(0.1 t) +
U(0, 0.02); the input is the last 16 values of x; the target applies the rule of the moment to
x_t, the rule index being floor(t / 500) mod 4 over x², |x|, sin(5x), sign(x). Model: 16 → 32
relu → 32 leaky_relu → 1 tanh (the notes' ScaledReLU is a relu up to a scale). Every step is
prequential: predict, score, then learn.

Arms: backprop, tween and hybrid at the library defaults; the protocol's backprop variants,
"batch" (every 5 steps, one pass of SGD at learning rate 0.02 over those 5 samples) and "step
with delay 2" (each step learns the sample of 2 steps before, as a pipeline would); chain-rule
tween at the protocol's rate 0.05. The targets are learned as they are (``target_scaling``
off), since the tanh output cannot reach standardised values beyond ±1. Baselines: predicting
0, and predicting the running mean of the targets seen so far.

Metric (the notes'): the rolling mean squared error over the last 50 steps, at steps 500 and
1,000, and the mean squared error over all 3,000 steps; 10 seeds (the noise and the initial
weights).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

STEPS, WINDOW, PERIOD, HISTORY = 3_000, 50, 500, 16
RULES = (np.square, np.abs, lambda x: np.sin(5 * x), np.sign)
#: arm -> (mode, settings, how it learns: "step", "batch5" or "delay2")
ARMS: dict[str, tuple[str, dict[str, Any], str]] = {
    "backprop (defaults)": ("backprop", {}, "step"),
    "backprop, batch of 5 (protocol: SGD 0.02)": ("backprop", {"optimizer": "sgd",
                                                               "learning_rate": 0.02,
                                                               "momentum": 0.0}, "batch5"),
    "backprop, delay 2 (protocol: SGD 0.02)": ("backprop", {"optimizer": "sgd",
                                                            "learning_rate": 0.02,
                                                            "momentum": 0.0}, "delay2"),
    "tween (defaults)": ("tween", {}, "step"),
    "tween (protocol: rate 0.05)": ("tween", {"tween_rate": 0.05}, "step"),
    "hybrid (defaults)": ("hybrid", {}, "step"),
}


def stream(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(X, y): the 16-value histories and the targets of the 3,000 steps."""
    rng = np.random.default_rng(seed)
    t = np.arange(STEPS + HISTORY)
    x = np.sin(0.1 * t) + rng.uniform(0, 0.02, len(t))
    X = np.stack([x[s:s + HISTORY] for s in range(STEPS)]).astype(np.float32)
    now = x[HISTORY - 1:HISTORY - 1 + STEPS]
    rule = (np.arange(STEPS) // PERIOD) % len(RULES)
    y = np.array([RULES[r](v) for r, v in zip(rule, now, strict=True)], np.float32)
    return X, y


def network():
    from tweenstream import Dense, Network

    return Network(HISTORY, [Dense(32, "relu"), Dense(32, "leaky_relu"), Dense(1, "tanh")],
                   task="regression")


def scores(errors: np.ndarray) -> dict[str, float]:
    """The notes' figures from per-step squared errors."""
    rolling = np.convolve(errors, np.ones(WINDOW) / WINDOW, mode="valid")  # ends at step s
    return {"mse_at_500": float(rolling[500 - WINDOW]),
            "mse_at_1000": float(rolling[1000 - WINDOW]), "mse_all": float(errors.mean())}


def run(arm: str, seed: int) -> dict:
    """One arm on one seed, prequential."""
    from tweenstream import Learner

    X, y = stream(seed)
    mode, settings, how = ARMS[arm]
    model = Learner(network(), mode=mode, seed=seed, target_scaling="off", **settings)
    errors = np.empty(STEPS)
    for s in range(STEPS):
        errors[s] = (model.predict_one(X[s]) - y[s]) ** 2
        if how == "step":
            model.learn_one(X[s], y[s:s + 1])
        elif how == "delay2" and s >= 2:
            model.learn_one(X[s - 2], y[s - 2:s - 1])
        elif how == "batch5" and s % 5 == 4:
            model.learn_many(X[s - 4:s + 1], y[s - 4:s + 1, None])
    st = model.state()
    return {"arm": arm, "seed": seed, **scores(errors), "explosions": st["explosions"],
            "switched_at": st["switched_at"]}


def baselines(seed: int) -> list[dict]:
    """Predicting 0, and the running mean of the targets seen so far."""
    _, y = stream(seed)
    seen = np.concatenate([[0.0], np.cumsum(y)[:-1] / np.arange(1, STEPS)])
    return [{"arm": "baseline: 0", "seed": seed, **scores(y.astype(np.float64) ** 2)},
            {"arm": "baseline: running mean", "seed": seed, **scores((y - seen) ** 2)}]


def main(argv: list[str] | None = None) -> int:
    from bench.tune_streams import emit, save

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    out: list[dict] = []
    for seed in range(args.seeds):
        for row in baselines(seed):
            emit(out, row)
        for arm in ARMS:
            emit(out, run(arm, seed))
    save(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
