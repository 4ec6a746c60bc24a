"""The seeds' B7 protocol: a prequential sine stream whose frequency switches.

    python -m bench.sine_switch [--per-phase 25000] [--seeds 10] [--json build/sine.json]

As the reference notes write it (section 10, B7, with the data of section 7.2): for each
frequency f = 1, 2, 3, 4, the series s_f(i) = sin(f 0.1 i), i < 100, min-max normalised to
[0, 1]; a sample is 16 consecutive values and the next one is its target (84 samples per f).
The stream presents f = 1, then 2, 3 and 4, ``--per-phase`` samples each (25,000 as the notes
ask), cycling through that frequency's 84 samples. Every sample is predicted, scored, then
learned. A prediction is correct if it is within 0.10 of the target.

Models (the notes'): Dense 16 → 16 leaky_relu → 16 leaky_relu → 1 sigmoid; and Conv2D on the 16
values as a 4×4 image, 2 filters of 2×2 with stride 2, then 1 sigmoid. Differences that remain:
our Conv2D pads "same" (2×2×2 = 8 features, where Loom's padding of 1 gives 3×3×2 = 18), the
initial weights are the library's (not scaled by 0.5), and the targets are learned as they are
(``target_scaling`` off), since the sigmoid output cannot reach standardised values.

Arms: the notes' "NormalBP" (every 1,000 samples, one pass of SGD at learning rate 0.01 over
those 1,000, predicting with the weights of the last pass in between) and "StepBP" (SGD at
0.01 per sample, gradients clipped at 0.5); chain-rule tween per sample at the protocol's 0.01
and at the default; backprop and hybrid at the defaults. Baselines: the persistence forecast
(the last input value) and the constant 0.5.

Reported: the mean accuracy over 200 windows of equal count; at each of the 3 switches, the
accuracy of the window before, of the first window after, and how many windows it takes to
get back to the accuracy before (the number of windows left, if never).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

HISTORY, LENGTH, THRESHOLD, WINDOWS = 16, 100, 0.10, 200
FREQUENCIES = (1, 2, 3, 4)
#: arm -> (mode, settings, how it learns: "step" or "buffer")
ARMS: dict[str, tuple[str, dict[str, Any], str]] = {
    "NormalBP (protocol: SGD 0.01 every 1,000)": ("backprop", {"optimizer": "sgd",
                                                               "learning_rate": 0.01,
                                                               "momentum": 0.0}, "buffer"),
    "StepBP (protocol: SGD 0.01, clip 0.5)": ("backprop", {"optimizer": "sgd",
                                                           "learning_rate": 0.01,
                                                           "momentum": 0.0, "grad_clip": 0.5},
                                              "step"),
    "backprop (defaults)": ("backprop", {}, "step"),
    "tween (protocol: rate 0.01)": ("tween", {"tween_rate": 0.01}, "step"),
    "tween (defaults)": ("tween", {}, "step"),
    "hybrid (defaults)": ("hybrid", {}, "step"),
}


def samples(f: int) -> tuple[np.ndarray, np.ndarray]:
    """The 84 (inputs, target) pairs of frequency ``f``."""
    s = np.sin(f * 0.1 * np.arange(LENGTH))
    s = (s - s.min()) / (s.max() - s.min())
    X = np.stack([s[i:i + HISTORY] for i in range(LENGTH - HISTORY)]).astype(np.float32)
    return X, s[HISTORY:].astype(np.float32)


def stream(per_phase: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole stream: each frequency's samples cycled ``per_phase`` times, in order."""
    parts = [samples(f) for f in FREQUENCIES]
    idx = np.arange(per_phase) % (LENGTH - HISTORY)
    return (np.concatenate([X[idx] for X, _ in parts]),
            np.concatenate([y[idx] for _, y in parts]))


def network(kind: str):
    from tweenstream import Conv2D, Dense, Flatten, Network

    if kind == "Dense":
        return Network(HISTORY, [Dense(16, "leaky_relu"), Dense(16, "leaky_relu"),
                                 Dense(1, "sigmoid")], task="regression")
    return Network((4, 4, 1), [Conv2D(2, 2, stride=2, padding="same", activation="leaky_relu"),
                               Flatten(), Dense(1, "sigmoid")], task="regression")


def summary(correct: np.ndarray, per_phase: int) -> dict[str, Any]:
    """Mean window accuracy, and the dip and recovery at each switch."""
    windows = correct.reshape(WINDOWS, -1).mean(axis=1)
    per = WINDOWS // len(FREQUENCIES)
    switches = []
    for k in range(1, len(FREQUENCIES)):
        before, after = windows[k * per - 1], windows[k * per:]
        back = np.flatnonzero(after >= before)
        switches.append({"before": float(before), "after": float(after[0]),
                         "windows_to_recover": int(back[0]) if back.size else len(after)})
    return {"accuracy": float(windows.mean()), "switches": switches}


def run(model_kind: str, arm: str, seed: int, per_phase: int) -> dict:
    """One arm on one seed, prequential."""
    from tweenstream import Learner

    X, y = stream(per_phase)
    mode, settings, how = ARMS[arm]
    model = Learner(network(model_kind), mode=mode, seed=seed, target_scaling="off",
                    **settings)
    correct = np.empty(len(y), bool)
    for s in range(len(y)):
        correct[s] = abs(model.predict_one(X[s]) - y[s]) < THRESHOLD
        if how == "step":
            model.learn_one(X[s], y[s:s + 1])
        elif s % 1_000 == 999:
            model.learn_many(X[s - 999:s + 1], y[s - 999:s + 1, None])
    st = model.state()
    return {"model": model_kind, "arm": arm, "seed": seed, **summary(correct, per_phase),
            "explosions": st["explosions"], "switched_at": st["switched_at"]}


def baselines(per_phase: int) -> list[dict]:
    """Persistence and the constant 0.5 (no seed: the stream is the same for every seed)."""
    X, y = stream(per_phase)
    return [{"model": "-", "arm": name, "seed": None,
             **summary(np.abs(pred - y) < THRESHOLD, per_phase)}
            for name, pred in (("baseline: persistence", X[:, -1]),
                               ("baseline: constant 0.5", np.full_like(y, 0.5)))]


def main(argv: list[str] | None = None) -> int:
    from bench.tune_streams import emit, save

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--per-phase", type=int, default=25_000)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.per_phase % (WINDOWS // len(FREQUENCIES)) or args.per_phase % 1_000:
        p.error("--per-phase must be a multiple of 1,000 (windows and NormalBP's buffer)")
    out: list[dict] = []
    for row in baselines(args.per_phase):
        emit(out, row)
    for model_kind in ("Dense", "Conv2D"):
        for arm in ARMS:
            for seed in range(args.seeds):
                emit(out, run(model_kind, arm, seed, args.per_phase))
    save(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
