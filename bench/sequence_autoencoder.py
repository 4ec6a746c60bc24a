"""An LSTM autoencoder with attention, trained online without labels, with the cosine hybrid
loss beside squared error alone.

    python -m bench.sequence_autoencoder [--train 10000] [--test 1000] [--seeds 3]
                                         [--attention residual|plain]
                                         [--json build/sequence_ae.json]

The stream: sequences of 12 steps of 16-dimensional vectors with structure. Each sequence has
4 latent factors, each a sine of one of three frequencies and a random phase; step t is
tanh(M z_t) plus noise (standard deviation 0.05), with one fixed mixing matrix M (16 x 4) per
seed, and a random gain in [0.5, 2] per sequence (so the vectors' direction carries the
structure and their length varies).

The model (a small version of an LSTM autoencoder with a self-attention decoder):
LSTM(32) encoder -> Dense(16, tanh) bottleneck -> RepeatVector(12) -> LSTM(32) over the steps
-> self-attention with a residual connection, Residual([MultiHeadAttention(2)]) ->
TimeDense(16). ``--attention plain`` drops the residual connection around the
attention. It learns each training sequence once, in order
(``reconstruct=True``, no labels), in each mode at the library defaults except the loss:
``squared`` (the baseline) or ``cosine`` with ``cosine_weight=0.9`` (90% cosine per step, 10%
squared error). Then, on held-out sequences of the same stream, it reports:

- token-level cosine similarity: the mean over steps of cos(x_t, x̂_t);
- sequence-level cosine similarity: cos(x, x̂) of the whole flattened sequence;
- the mean squared error per value, and microseconds per learned sequence.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

STEPS, DIM, FACTORS = 12, 16, 4
FREQUENCIES = (0.3, 0.6, 1.1)
MODES = ("tween", "backprop", "hybrid")
LOSSES = {"squared": {"loss": "squared"}, "cosine 0.9": {"loss": "cosine", "cosine_weight": 0.9}}


def sequences(n: int, seed: int, mixing: np.ndarray) -> np.ndarray:
    """(n, STEPS * DIM) float32 sequences of the stream (see the module docstring)."""
    rng = np.random.default_rng(seed)
    t = np.arange(STEPS)[None, :, None]
    freq = rng.choice(FREQUENCIES, size=(n, 1, FACTORS))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, FACTORS))
    z = np.sin(freq * t + phase)  # (n, steps, factors)
    gain = rng.uniform(0.5, 2.0, (n, 1, 1))
    x = gain * np.tanh(z @ mixing.T) + 0.05 * rng.standard_normal((n, STEPS, DIM))
    return x.reshape(n, -1).astype(np.float32)


def network(attention: str = "residual"):
    """The autoencoder of the module docstring."""
    from tweenstream import (
        LSTM,
        Dense,
        MultiHeadAttention,
        Network,
        RepeatVector,
        Residual,
        TimeDense,
    )

    block = MultiHeadAttention(2) if attention == "plain" else Residual([MultiHeadAttention(2)])
    return Network((STEPS, DIM), [LSTM(32), Dense(16, "tanh"), RepeatVector(STEPS),
                                  LSTM(32, return_sequences=True), block, TimeDense(DIM)],
                   task="regression")


def similarities(X: np.ndarray, R: np.ndarray) -> tuple[float, float, float]:
    """(token-level cosine, sequence-level cosine, mean squared error) of reconstructions R."""
    x, r = X.reshape(-1, DIM).astype(np.float64), R.reshape(-1, DIM).astype(np.float64)
    token = (x * r).sum(1) / np.maximum(np.linalg.norm(x, axis=1) * np.linalg.norm(r, axis=1),
                                        1e-12)
    X64, R64 = X.astype(np.float64), R.astype(np.float64)
    seq = (X64 * R64).sum(1) / np.maximum(np.linalg.norm(X64, axis=1)
                                          * np.linalg.norm(R64, axis=1), 1e-12)
    return float(token.mean()), float(seq.mean()), float(((X64 - R64) ** 2).mean())


def run(mode: str, loss: dict, seed: int, train: np.ndarray, test: np.ndarray,
        attention: str = "residual") -> dict:
    """Learn ``train`` once in order; the held-out figures of ``test``."""
    from tweenstream import Learner

    model = Learner(network(attention), mode=mode, reconstruct=True, seed=seed, **loss)
    start = time.perf_counter()
    for x in train:
        model.learn_one(x)
    us = (time.perf_counter() - start) / len(train) * 1e6
    token, seq, mse = similarities(test, model.predict_many(test))
    state = model.state()
    return {"token_cos": token, "sequence_cos": seq, "mse": mse, "us_per_sample": us,
            "explosions": int(state.get("explosions", 0)),
            "switched": state.get("phase") == "backprop" if mode == "hybrid" else None}


def main(argv: list[str] | None = None) -> int:
    from bench.tune_streams import emit, save

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--train", type=int, default=10_000)
    p.add_argument("--test", type=int, default=1_000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--attention", choices=("residual", "plain"), default="residual")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    out: list[dict] = []
    from tweenstream import Learner

    Learner(network(args.attention), reconstruct=True).learn_one(np.zeros(STEPS * DIM))  # compile
    for seed in range(args.seeds):
        mixing = np.random.default_rng(1_000 + seed).normal(0, 0.6, (DIM, FACTORS))
        train = sequences(args.train, 2 * seed, mixing)
        test = sequences(args.test, 2 * seed + 1, mixing)
        for mode in MODES:
            for name, loss in LOSSES.items():
                emit(out, {"mode": mode, "loss": name, "seed": seed, "attention": args.attention,
                           **run(mode, loss, seed, train, test, args.attention)})
    save(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
