"""Backprop refinement: minibatch backprop over a replay sample, parallel over each minibatch.

Each minibatch is split among workers (row t of every W goes to worker t). Every worker owns a
full set of buffers (its own copy of the parameters, activations and gradient accumulator) and
runs the compiled ``accumulate_gradients`` kernel over its rows. The workers' accumulators are
then summed in a fixed order (a reduction: no shared writes, no Hogwild), and one optimiser
step (SGD with heavy-ball momentum, or Adam) updates the parameters. After every epoch the
held-out loss is measured; refinement stops when it has not improved for ``patience`` epochs
and returns the best parameters seen.

Workers are ``ThreadWorkers`` by default (``threads`` threads of this process; the kernel
releases the GIL) or any object with the same three methods, e.g. the actors of a Ray cluster
(``stream/ray_refine.py``). The split and the order of the sum depend only on the number of
workers, so a job gives the same parameters, bit for bit, on W threads or on W actors.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tweenstream.runtime import layout as lay
from tweenstream.runtime.arena import Arena
from tweenstream.runtime.config import TweenConfig, cosine_step
from tweenstream.runtime.learner import Learner
from tweenstream.runtime.plan import compile_plan, layer_table

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class RefineSettings:
    """How to refine. ``threads`` 0 means one per core; more than the cores are not used.

    Examples
    --------
    >>> RefineSettings(epochs=3, optimizer="adam").optimizer
    'adam'
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    holdout: float = 0.2
    patience: int = 2
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be 'sgd' or 'adam', found {self.optimizer!r}")
        for name in ("epochs", "batch_size", "patience", "threads", "seed"):
            value = getattr(self, name)
            low = 0 if name in ("threads", "seed") else 1
            if type(value) is not int or value < low:
                raise ValueError(f"{name} must be an int >= {low}, found {value!r}")
        for name in ("holdout", "learning_rate", "momentum", "beta1", "beta2", "eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, found {value!r}")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout must be in (0, 1), found {self.holdout!r}")
        if not 0.0 < self.learning_rate < 1e30:
            raise ValueError(f"learning_rate must be > 0, found {self.learning_rate!r}")
        for name in ("momentum", "beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), found {getattr(self, name)!r}")
        if not 0.0 < self.eps < 1.0:
            raise ValueError(f"eps must be in (0, 1), found {self.eps!r}")


@dataclass
class RefineResult:
    """Refined parameters and held-out metrics before and after."""

    params: np.ndarray
    before: dict[str, float]
    after: dict[str, float]
    epochs_run: int
    stopped_early: bool
    samples_per_s: float
    history: list[dict[str, float]] = field(default_factory=list)


def evaluate(learner: Learner, params: np.ndarray, X: np.ndarray, Y: np.ndarray
             ) -> dict[str, float]:
    """Loss and accuracy (classification) or MAE (regression) of ``params`` on (X, Y).

    X holds inputs as the replay reservoir keeps them (``Learner.network_inputs``); Y output
    units (classification) or targets."""
    saved = learner.arena.params.copy()
    learner.arena.params[:] = params
    k = learner.network.n_outputs
    try:
        out = learner._forward(learner.network_inputs(X), np.empty((len(X), k), np.float32))
        if learner.network.task == "classification":
            p = out
            loss = float(-np.log(np.maximum(p[np.arange(len(Y)), Y], 1e-12)).mean())
            return {"loss": loss, "accuracy": float((p.argmax(axis=1) == Y).mean())}
        net_out = out
        out = learner.outputs(out)
        err = out - Y.reshape(out.shape)
        kind, weight = loss_of(learner)
        mix = weight if kind == "cosine" else 0.0
        loss = (1.0 - mix) * 0.5 * (err ** 2).sum(axis=1).mean()
        if mix > 0.0:  # on the rows the network learns, as the kernel computes it
            t = learner.network_targets(np.asarray(Y, np.float32).reshape(out.shape))
            t = t[:, :net_out.shape[1]].astype(np.float64)
            a = net_out.astype(np.float64)
            cos = (a * t).sum(axis=1) / (np.maximum(np.linalg.norm(a, axis=1), 1e-8)
                                         * np.maximum(np.linalg.norm(t, axis=1), 1e-8))
            loss += mix * float((1.0 - cos).mean())
        return {"loss": float(loss), "mae": float(np.abs(err).mean())}
    finally:
        learner.arena.params[:] = saved


def refine(learner: Learner, X: np.ndarray, Y: np.ndarray, settings: RefineSettings,
           progress: Callable[[dict[str, Any]], None] | None = None,
           workers: Any = None) -> RefineResult:
    """Refine ``learner``'s current parameters on (X, Y); the learner itself is not changed.
    ``workers`` computes the minibatch gradients (default: ``ThreadWorkers`` of
    ``settings.threads``).

    Examples
    --------
    >>> from tweenstream import Dense, Network
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (600, 2)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> model = Learner(Network(2, [Dense(8, "tanh"), Dense(2)]), mode="tween")
    >>> model.learn_many(X[:30], y[:30])  # a rough start: it also learns input statistics
    >>> result = refine(model, X, y, RefineSettings(epochs=20, learning_rate=0.1))
    >>> result.after["accuracy"] > result.before["accuracy"]
    True
    """
    net = learner.network
    classification = net.task == "classification"
    for stage, what in ((learner.scaler, "input"), (learner.target_scaler, "target")):
        if stage is not None and not stage.fixed and stage.seen[0] == 0:
            raise ValueError(f"the learner's {what} standardisation has no statistics yet, so "
                             "refinement has nothing to scale with: let it learn from the "
                             "stream first, or give them (Learner.set_scaling)")
    order = np.random.default_rng(settings.seed).permutation(len(X))
    cut = len(X) - max(1, round(settings.holdout * len(X)))
    Xt = learner.network_inputs(X[order[:cut]])  # the network's rows, scaled as it would now
    Xh = np.ascontiguousarray(X[order[cut:]], dtype=np.float32)
    if classification:
        Yt, Yh = np.ascontiguousarray(Y[order[:cut]], np.int64), np.asarray(Y[order[cut:]])
        Yr = np.zeros((1, net.n_outputs), np.float32)
    else:
        Yt = np.zeros(1, np.int64)
        Yr = learner.network_targets(np.asarray(Y).reshape(len(X), -1)[order[:cut]])
        Yh = np.asarray(Y, np.float32).reshape(len(X), -1)[order[cut:]]
    if workers is None:
        cores = os.cpu_count() or 1
        workers = ThreadWorkers(min(settings.threads or cores, cores))  # no more than cores
    count = workers.begin(learner, Xt, Yt, Yr)
    try:
        return _descend(learner, settings, workers, count, Xt, Xh, Yh, progress)
    finally:
        workers.end()


def _descend(learner: Learner, settings: RefineSettings, workers: Any, count: int,
             Xt: np.ndarray, Xh: np.ndarray, Yh: np.ndarray,
             progress: Callable[[dict[str, Any]], None] | None) -> RefineResult:
    """The epochs of ``refine``: minibatches split among ``count`` workers."""
    params = learner.arena.params.copy()
    velocity = np.zeros_like(params)
    second = np.zeros_like(params) if settings.optimizer == "adam" else velocity
    before = evaluate(learner, params, Xh, Yh)
    best, best_loss, stale, history = params.copy(), before["loss"], 0, []
    rng = np.random.default_rng(settings.seed + 1)
    steps, done, started, epoch = 0, 0, time.perf_counter(), 0
    stopped_early = False
    for epoch in range(1, settings.epochs + 1):
        perm = rng.permutation(len(Xt))
        for start in range(0, len(perm), settings.batch_size):
            batch = perm[start:start + settings.batch_size]
            shares = [np.ascontiguousarray(batch[t::count], np.int64) for t in range(count)]
            sums = workers.accumulate(params, shares)
            direction = np.asarray(sums[0], dtype=np.float64).copy()
            for acc in sums[1:]:  # fixed order: the same result every run
                direction += acc
            direction /= len(batch)
            steps += 1
            params = _step(settings, params, direction, velocity, second, steps)
            done += len(batch)
        metrics = evaluate(learner, params, Xh, Yh)
        history.append({"epoch": epoch, **metrics})
        if progress is not None:
            progress({"epoch": epoch, "epochs": settings.epochs, **metrics})
        if metrics["loss"] < best_loss - 1e-9 and np.isfinite(params).all():
            best, best_loss, stale = params.copy(), metrics["loss"], 0
        else:
            stale += 1
            if stale >= settings.patience:
                stopped_early = True
                break
    after = evaluate(learner, best, Xh, Yh)
    rate = done / max(time.perf_counter() - started, 1e-9)
    return RefineResult(best, before, after, epoch, stopped_early, rate, history)


class GradientShare:
    """One worker's buffers for one job: the network's plan, engine and its own arena; it sums
    the gradients of the rows it is given, at the parameters it is given.

    Examples
    --------
    >>> from tweenstream import Dense, Network
    >>> net = Network(2, [Dense(2)])
    >>> share = GradientShare(net, np.zeros((3, 2), np.float32), np.zeros(3, np.int64),
    ...                       np.zeros((1, 2), np.float32))
    >>> share.accumulate(np.zeros(net.param_count, np.float32), np.arange(3)).shape
    (6,)
    """

    def __init__(self, network: Any, X: np.ndarray, Yc: np.ndarray, Yr: np.ndarray,
                 engine: Any = None, loss: tuple[str, float] = ("auto", 0.9)) -> None:
        from tweenstream.runtime.engine import learner_engine, plan_kinds

        self.plan = compile_plan(network)
        classification = network.task == "classification"
        self.cfg, self.icfg = TweenConfig(mode="backprop", loss=loss[0],
                                          cosine_weight=loss[1]).to_arrays(
            lay.T_CLASSIFICATION if classification else lay.T_REGRESSION, cosine_step(network))
        self.ltab = layer_table(self.plan, 1.2, 100.0)
        # any engine of the network's kinds has the minibatch kernel
        self.engine = engine or learner_engine(plan_kinds(self.plan), False)
        self.arena = Arena(self.plan)
        self.X, self.Yc, self.Yr = X, Yc, Yr
        self.last_loss = 0.0

    def accumulate(self, params: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The summed gradient of ``rows`` at ``params`` (a view of this share's buffer); their
        summed loss is left in ``last_loss``."""
        a = self.arena
        a.pbuf[lay.P_PARAM] = params
        self.last_loss = float(self.engine.accumulate_gradients(
            self.plan.table, self.ltab, a.pbuf, a.work, a.diag, self.cfg, self.icfg, a.fst, self.X,
            self.Yc, self.Yr, np.ascontiguousarray(rows, np.int64)))
        return a.pbuf[lay.P_ACC]


def loss_of(learner: Learner) -> tuple[str, float]:
    """The learner's loss setting, as a gradient worker needs it: (loss, cosine_weight)."""
    return learner.config.loss, float(learner.config.cosine_weight)


class ThreadWorkers:
    """``threads`` workers in threads of this process (the default of ``refine``).

    Examples
    --------
    >>> ThreadWorkers(2).threads
    2
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._shares: list[GradientShare] = []
        self._pool: ThreadPoolExecutor | None = None

    def begin(self, learner: Learner, X: np.ndarray, Yc: np.ndarray, Yr: np.ndarray) -> int:
        """Set up a job's buffers; returns the number of workers."""
        self._shares = [GradientShare(learner.network, X, Yc, Yr, learner.engine,
                                      loss_of(learner)) for _ in range(self.threads)]
        self._pool = ThreadPoolExecutor(max_workers=self.threads)
        return self.threads

    def accumulate(self, params: np.ndarray, shares: list[np.ndarray]) -> list[np.ndarray]:
        """Each worker's summed gradient of its rows, in worker order."""
        if self._pool is None:
            raise RuntimeError("begin() first")
        return list(self._pool.map(GradientShare.accumulate, self._shares,
                                   [params] * len(shares), shares))

    def end(self) -> None:
        """Release the job's buffers and threads."""
        if self._pool is not None:
            self._pool.shutdown()
        self._pool, self._shares = None, []


def _step(s: RefineSettings, params: np.ndarray, direction: np.ndarray, velocity: np.ndarray,
          second: np.ndarray, t: int) -> np.ndarray:
    """One optimiser step along the descent direction (minus the mean gradient)."""
    if s.optimizer == "sgd":
        velocity *= s.momentum
        velocity += direction
        return (params + s.learning_rate * velocity).astype(np.float32)
    velocity *= s.beta1
    velocity += (1 - s.beta1) * direction
    second *= s.beta2
    second += (1 - s.beta2) * direction * direction
    m_hat = velocity / (1 - s.beta1 ** t)
    v_hat = second / (1 - s.beta2 ** t)
    return (params + s.learning_rate * m_hat / (np.sqrt(v_hat) + s.eps)).astype(np.float32)
