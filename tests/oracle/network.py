"""Oracle of a whole learning step in every mode, float64, from docs/tweening.md.

Shapes: L layers; layer i has W_i (n_i, n_{i-1}) and b_i (n_i,), with n_{-1} the input size.
The flat layout (``flat_params``) is, per layer in order, W row-major then b. A classifier's
last layer gives logits; p = softmax(logits), loss = -log p_c. A regressor's loss is
½‖y - a_{L-1}‖².

Explosion handling is left out: the adaptive rate is a fixed 1.0, so the oracle only matches the
engine on clean data where no trigger fires.

Readings of points the spec leaves implicit (the engine agrees with all of them):
- a layer skipped by the link-budget gate changes nothing for that sample, momentum included;
  inside a batch it adds nothing to the sum, and the mean still divides by ``batch_size``;
- the heuristic output target of a regressor is ``y`` itself, not clamped to the output range;
- the rate multipliers act in ``tween-heuristic`` only, never in ``tween``;
- gaps, budgets and the barrier are recorded on samples 1, k + 1, 2k + 1, ... for
  ``diagnostics_every`` = k, and on every sample in modes that learn from budgets (heuristic,
  chain tween with the gate); the other samples keep the last recorded values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .dense import (
    activation_derivative,
    backprop_grads,
    chain_target,
    dense_forward,
    dense_input_signal,
    gap_and_budget,
    local_error,
    project_target,
    softmax,
    tween_deltas,
)

# Settings of docs/tweening.md with their default values (a subset of the engine's config).
DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.01,
    "momentum": 0.9,
    "grad_clip": None,
    "tween_rate": 1.0,
    "tween_momentum": 0.9,
    "gradient_scale": 0.1,
    "delta_clip": 1.0,
    "depth_scale_factor": 1.0,
    "depth_scale_cap": 100.0,
    "ignore_threshold": 0.2,
    "chain_gate": False,
    "local_derivative": True,
    "weight_rate_multiplier": 0.01,  # heuristic only; Loom's values are the defaults
    "bias_rate_multiplier": 0.1,
    "batch_size": 1,
    "diagnostics_every": 1,  # gaps, budgets, barrier: on samples 1, k + 1, 2k + 1, ...
}
MODES = ("backprop", "tween", "tween-heuristic")
TYPE_RATE_DENSE = 1.0


def depth_scale(d: int, factor: float, cap: float) -> float:
    """D = min(factor^d', cap) with d' = d for d <= 10, else 10 + ln(d - 9)."""
    dd = d if d <= 10 else 10.0 + math.log(d - 9)
    return min(factor**dd, cap)


def flatten(Ws: list[np.ndarray], bs: list[np.ndarray]) -> np.ndarray:
    """Per-layer tensors in the engine's flat layout: per layer W row-major, then b."""
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(Ws, bs, strict=True)])


def forward(Ws: list[np.ndarray], bs: list[np.ndarray], acts: list[str],
            x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Inputs x_i, pre-activations z_i and outputs a_i of every layer."""
    xs, zs, outs = [], [], []
    h = np.asarray(x, dtype=np.float64)
    for W, b, act in zip(Ws, bs, acts, strict=True):
        z, a = dense_forward(W, b, h, act)
        xs.append(h)
        zs.append(z)
        outs.append(a)
        h = a
    return xs, zs, outs


def output_signal(out: np.ndarray, y: Any, classify: bool) -> np.ndarray:
    """g_{L-1} = -dloss/d(output): onehot(c) - p w.r.t. the logits, or y - a."""
    if classify:
        g = -softmax(out)
        g[int(y)] += 1.0
        return g
    return np.asarray(y, dtype=np.float64) - out


def loss(Ws: list[np.ndarray], bs: list[np.ndarray], acts: list[str], x: np.ndarray, y: Any,
         classify: bool) -> float:
    """Softmax cross-entropy (classification) or ½ squared error (regression) of one sample."""
    out = forward(Ws, bs, acts, x)[2][-1]
    if classify:
        m = np.max(out)
        return float(m + np.log(np.sum(np.exp(out - m))) - out[int(y)])
    r = np.asarray(y, dtype=np.float64) - out
    return float(0.5 * r @ r)


def backprop_gradient(Ws: list[np.ndarray], bs: list[np.ndarray], acts: list[str],
                      x: np.ndarray, y: Any, classify: bool
                      ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Exact gradient of ``loss`` w.r.t. every W_i, b_i and the input x (plain chain rule).

    Returns ``(dW, db, dx)`` with dW[i] = dloss/dW_i etc. (the ascent direction).
    """
    xs, zs, outs = forward(Ws, bs, acts, x)
    g = output_signal(outs[-1], y, classify)
    dW: list[np.ndarray] = [np.empty(0)] * len(Ws)
    db: list[np.ndarray] = [np.empty(0)] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        dz = g * activation_derivative(acts[i], zs[i])
        dW[i] = -np.outer(dz, xs[i])
        db[i] = -dz
        g = dense_input_signal(Ws[i], dz)
    return dW, db, -g


class OracleLearner:
    """A float64 re-implementation of one Learner's step rules, for parity tests.

    Parameters
    ----------
    network : tweenstream.models.Network
        Read only for its layer specs (``units``, ``activation``) and task.
    params : list of (W, b)
        Initial parameters, e.g. copied from the engine; they are copied to float64.
    mode : {"backprop", "tween", "tween-heuristic"}
    **settings
        Any key of ``DEFAULTS``.

    Examples
    --------
    >>> from tweenstream.models import Dense, Network
    >>> rng = np.random.default_rng(0)
    >>> net = Network(3, [Dense(2)])
    >>> ref = OracleLearner(net, [(rng.normal(size=(2, 3)), np.zeros(2))], mode="backprop")
    >>> ref.learn_one(np.ones(3), 1)
    >>> ref.flat_params().shape
    (8,)
    """

    def __init__(self, network: Any, params: list[tuple[np.ndarray, np.ndarray]],
                 mode: str = "tween", **settings: Any) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, found {mode!r}")
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown oracle settings {sorted(unknown)}")
        self.mode = mode
        self.cfg = {**DEFAULTS, **settings}
        self.classify = network.task == "classification"
        self.acts = [spec.activation for spec in network.layers]
        self.W = [np.array(W, dtype=np.float64) for W, _ in params]
        self.b = [np.array(b, dtype=np.float64) for _, b in params]
        self.vW = [np.zeros_like(W) for W in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]
        self.accW = [np.zeros_like(W) for W in self.W]
        self.accb = [np.zeros_like(b) for b in self.b]
        self.fill = 0
        n = len(self.W)
        self.depth = [depth_scale(n - 1 - i, self.cfg["depth_scale_factor"],
                                  self.cfg["depth_scale_cap"]) for i in range(n)]
        self.gap = np.zeros(n)
        self.budget = np.full(n, 0.5)
        self.barrier = np.zeros(n)
        self.skipped = np.zeros(n, dtype=np.int64)  # gated-off layer updates, per layer
        self.untargeted = np.zeros(n, dtype=np.int64)  # heuristic units that kept a_j
        self.seen = 0
        self.correct = 0
        self.classes: set[int] = set()  # learned so far: the only ones predicted

    # --- one sample --------------------------------------------------------------------------
    def learn_one(self, x: Any, y: Any) -> None:
        """Score the current prediction, then learn from (x, y) by the mode's rule."""
        x = np.asarray(x, dtype=np.float64)
        if self.classify:
            p = self.predict_proba_one(x)
            known = sorted(self.classes)
            guess = known[int(np.argmax(p[known]))] if known else -1
            self.correct += int(guess == int(y))
            self.classes.add(int(y))
        self.seen += 1
        gap, budget = self.gap.copy(), self.budget.copy()
        if self.mode == "tween-heuristic":
            dW, db = self._heuristic_deltas(x, y)
        else:
            dW, db = self._chain_deltas(x, y)
        k = self.cfg["diagnostics_every"]
        if (self.mode == "tween-heuristic" or (self.mode == "tween" and self.cfg["chain_gate"])
                or (self.seen - 1) % k == 0):
            self.barrier = np.cumprod(self.budget)
        else:  # not a diagnostic sample: the last recorded values stay
            self.gap, self.budget = gap, budget
        self._apply(dW, db)

    def learn_many(self, X: Any, Y: Any) -> None:
        """``learn_one`` on every row in order."""
        for x, y in zip(X, Y, strict=True):
            self.learn_one(x, y)

    def _chain_deltas(self, x: np.ndarray, y: Any
                      ) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
        """Modes tween and backprop: chain-rule signal, targets, diagnostics and deltas."""
        c = self.cfg
        xs, zs, outs = forward(self.W, self.b, self.acts, x)
        g = output_signal(outs[-1], y, self.classify)
        n = len(self.W)
        dW: list[np.ndarray | None] = [None] * n
        db: list[np.ndarray | None] = [None] * n
        for i in range(n - 1, -1, -1):
            act, a, z = self.acts[i], outs[i], zs[i]
            t = chain_target(a, g, act, c["gradient_scale"])
            self.gap[i], self.budget[i] = gap_and_budget(a, t)
            dz = g * activation_derivative(act, z)
            # W_i is read before anything changes: the signal uses pre-update weights.
            g_below = dense_input_signal(self.W[i], dz)
            if self.mode == "backprop":
                dW[i], db[i] = backprop_grads(dz, xs[i], c["grad_clip"])
            else:
                e = local_error(a, t, z, act)
                rate = c["tween_rate"] * TYPE_RATE_DENSE * self.depth[i]
                if c["chain_gate"]:
                    if self.budget[i] < c["ignore_threshold"]:
                        self.skipped[i] += 1
                        g = g_below
                        continue
                    rate *= 0.5 * (1.0 + self.budget[i])
                dW[i], db[i] = tween_deltas(e, xs[i], rate, rate, c["delta_clip"])
            g = g_below
        return dW, db

    def _heuristic_deltas(self, x: np.ndarray, y: Any
                          ) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
        """Mode tween-heuristic: top-down targets from the weights, then one forward sweep."""
        c = self.cfg
        n = len(self.W)
        tgt: list[np.ndarray] = [np.empty(0)] * n
        has: list[np.ndarray] = [np.empty(0, dtype=bool)] * n
        if self.classify:
            tgt[-1] = np.zeros(self.W[-1].shape[0])
            tgt[-1][int(y)] = 1.0
        else:
            tgt[-1] = np.asarray(y, dtype=np.float64).reshape(-1).copy()
        has[-1] = np.ones(tgt[-1].shape[0], dtype=bool)
        for i in range(n - 1, 0, -1):
            tgt[i - 1], has[i - 1] = project_target(self.W[i], tgt[i], has[i], self.acts[i - 1])
        dW: list[np.ndarray | None] = [None] * n
        db: list[np.ndarray | None] = [None] * n
        h = x
        for i in range(n):
            act = self.acts[i]
            z, a = dense_forward(self.W[i], self.b[i], h, act)
            if self.classify and i == n - 1:
                p = softmax(a)
                self.gap[i], self.budget[i] = gap_and_budget(p, tgt[i])
                e = tgt[i] - p
            else:
                self.untargeted[i] += int(np.count_nonzero(~has[i]))
                t = np.where(has[i], tgt[i], a)
                self.gap[i], self.budget[i] = gap_and_budget(a, t)
                e = local_error(a, t, z, act, c["local_derivative"])
            if self.budget[i] < c["ignore_threshold"]:
                self.skipped[i] += 1
            else:
                rate = (c["tween_rate"] * TYPE_RATE_DENSE * self.depth[i]
                        * 0.5 * (1.0 + self.budget[i]))
                dW[i], db[i] = tween_deltas(e, h, rate * c["weight_rate_multiplier"],
                                            rate * c["bias_rate_multiplier"], c["delta_clip"])
            h = a  # the next layer reads this layer's pre-update output
        return dW, db

    def _apply(self, dW: list[np.ndarray | None], db: list[np.ndarray | None]) -> None:
        """Apply per-sample deltas, or accumulate them and apply the mean every batch_size."""
        bsz = self.cfg["batch_size"]
        if bsz == 1:
            for i in range(len(self.W)):
                if dW[i] is not None:
                    self._momentum_step(i, dW[i], db[i])
            return
        for i in range(len(self.W)):
            if dW[i] is not None:
                self.accW[i] += dW[i]
                self.accb[i] += db[i]
        self.fill += 1
        if self.fill == bsz:
            for i in range(len(self.W)):
                self._momentum_step(i, self.accW[i] / bsz, self.accb[i] / bsz)
                self.accW[i][...] = 0.0
                self.accb[i][...] = 0.0
            self.fill = 0

    def _momentum_step(self, i: int, dW: Any, db: Any) -> None:
        c = self.cfg
        if self.mode == "backprop":
            mu, lr = c["momentum"], c["learning_rate"]
            self.vW[i] = mu * self.vW[i] + dW
            self.vb[i] = mu * self.vb[i] + db
            self.W[i] += lr * self.vW[i]
            self.b[i] += lr * self.vb[i]
        else:
            m = c["tween_momentum"]
            self.vW[i] = m * self.vW[i] + (1.0 - m) * dW
            self.vb[i] = m * self.vb[i] + (1.0 - m) * db
            self.W[i] += self.vW[i]
            self.b[i] += self.vb[i]

    # --- prediction and state ----------------------------------------------------------------
    def predict_proba_one(self, x: Any) -> np.ndarray:
        """Softmax probabilities (classification) or the outputs (regression) of one sample."""
        out = forward(self.W, self.b, self.acts, np.asarray(x, dtype=np.float64))[2][-1]
        return softmax(out) if self.classify else out

    def predict_proba_many(self, X: Any) -> np.ndarray:
        """``predict_proba_one`` of every row, shape (n, n_outputs)."""
        return np.array([self.predict_proba_one(x) for x in X])

    def predict_many(self, X: Any) -> np.ndarray:
        """Classes (n,) or outputs (n, n_outputs)."""
        out = self.predict_proba_many(X)
        return out.argmax(axis=1) if self.classify else out

    def flat_params(self) -> np.ndarray:
        """Parameters in the engine's flat layout: per layer W row-major, then b."""
        return flatten(self.W, self.b)

    def load_flat(self, params: np.ndarray, velocity: np.ndarray) -> None:
        """Overwrite parameters and momentum from vectors in the ``flat_params`` layout."""
        off = 0
        for i in range(len(self.W)):
            nw, nb = self.W[i].size, self.b[i].size
            self.W[i] = np.array(params[off:off + nw], dtype=np.float64).reshape(self.W[i].shape)
            self.vW[i] = np.array(velocity[off:off + nw], dtype=np.float64).reshape(self.W[i].shape)
            off += nw
            self.b[i] = np.array(params[off:off + nb], dtype=np.float64)
            self.vb[i] = np.array(velocity[off:off + nb], dtype=np.float64)
            off += nb
        if off != params.size or off != velocity.size:
            raise ValueError(f"expected {off} values, found {params.size} and {velocity.size}")

    def flat_velocity(self) -> np.ndarray:
        """Momentum in the same layout as ``flat_params``."""
        return flatten(self.vW, self.vb)
