"""Learner: the River-style online-learning API over the compiled interpreter."""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.models.network import Network
from tweenstream.models.registry import kind_of
from tweenstream.runtime import layout as lay
from tweenstream.runtime.anomaly import RankWindow
from tweenstream.runtime.arena import Arena
from tweenstream.runtime.config import TweenConfig, check_loss, cosine_step
from tweenstream.runtime.dense import BLOCK
from tweenstream.runtime.engine import Engine, learner_engine, plan_kinds
from tweenstream.runtime.inputs import check_ids
from tweenstream.runtime.interpreter import dense_predict_many
from tweenstream.runtime.labels import LabelMap
from tweenstream.runtime.plan import compile_plan, layer_table
from tweenstream.runtime.race import Race
from tweenstream.runtime.reservoir import Reservoir
from tweenstream.runtime.safety import ceiling, new_phase
from tweenstream.runtime.scaling import Scaler
from tweenstream.runtime.stage import InputStage, TargetStage, scaling_on
from tweenstream.runtime.update import layer_norms, reset_optimizer


class Learner:
    """Learns a Network online, one sample (or one batch) at a time.

    Parameters
    ----------
    network : Network
        What to learn.
    config : TweenConfig, optional
        Settings; any keyword argument below overrides a field of it.
    seed : int
        Seed of the weight initialisation.
    **settings
        Fields of ``TweenConfig``, e.g. ``mode="backprop"``, ``learning_rate=0.05``.

    Examples
    --------
    >>> import numpy as np
    >>> from tweenstream import Dense, Network
    >>> net = Network(2, [Dense(16, "tanh"), Dense(2)])
    >>> model = Learner(net, mode="tween", seed=1)
    >>> X = np.random.default_rng(0).uniform(-1, 1, (4000, 2)).astype(np.float32)
    >>> model.learn_many(X, (X[:, 0] > 0).astype(np.int64))
    >>> model.predict_one(np.array([0.7, 0.1], dtype=np.float32))
    1
    >>> model.state()["samples_seen"]
    4000
    """

    def __init__(self, network: Network, config: TweenConfig | None = None, *, seed: int = 0,
                 **settings: Any) -> None:
        if not isinstance(network, Network):
            raise TypeError(f"network must be a Network, found {type(network).__name__}")
        if config is not None and not isinstance(config, TweenConfig):
            raise TypeError(f"config must be a TweenConfig, found {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, found {seed!r}")
        self.network = network
        self.config = (config or TweenConfig()).replace(**settings)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._plan = compile_plan(network)
        self._kinds = plan_kinds(self._plan)
        self._engines: dict[bool, Engine] = {}
        self.arena = Arena(self._plan)
        self.arena.initialise(self._rng)
        c = self.config
        self._input = InputStage(network, scaling_on(network, c.scaling), c.scale_clip,
                                 c.scale_freeze_after)
        first = network.layers[0]
        self._vocab = first.vocab if kind_of(first).name == "embedding" else 0
        self._classify = network.task == "classification"
        self._reconstruct = bool(c.reconstruct)
        check_loss(c.loss, network.task)
        if self._reconstruct:
            _check_autoencoder(network, c)
        self.labels = LabelMap(network.n_outputs) if self._classify else None
        self._task = lay.T_CLASSIFICATION if self._classify else lay.T_REGRESSION
        k = network.n_outputs
        self._yc1 = np.zeros(1, dtype=np.int64)
        self._targets = TargetStage(k, None if self._classify or c.target_scaling == "off"
                                    or self._reconstruct
                                    else Scaler(k, c.scale_clip, c.scale_freeze_after))
        # an autoencoder's recent reconstruction errors, for its anomaly scores
        self.anomaly = RankWindow(c.metric_window) if self._reconstruct else None
        self._yr1 = self._targets.row  # the engine's one-sample target row (or placeholder)
        self._out1 = np.zeros((1, k), dtype=np.float32)
        # networks of Dense layers predict batches BLOCK rows at a time (dense_predict_many)
        widest = max([network.n_inputs, *(int(r[lay.C_NOUT]) for r in self._plan.table)])
        self._block = np.zeros((2, BLOCK * widest), np.float32) \
            if self._kinds == ("dense",) else None
        self._apply_config()
        self.reservoir = Reservoir(c.reservoir_size, network.n_inputs, k, self._classify,
                                   recency=c.reservoir_recency, seed=self.seed) \
            if c.reservoir_size else None
        mode = lay.MODES.index(self.config.mode)
        self.arena.ist[lay.N_PHASE] = lay.M_TWEEN if mode == lay.M_HYBRID else mode

    # --- configuration ----------------------------------------------------------------------
    def _apply_config(self) -> None:
        c = self.config
        self._ltab = layer_table(self._plan, c.depth_scale_factor, c.depth_scale_cap)
        self._cfg, self._icfg = c.to_arrays(self._task, cosine_step(self.network))
        targets = getattr(self, "_targets", None)
        for sc in (self._input.scaler, targets.scaler if targets else None):
            if sc is not None:
                sc.configure(c.scale_clip, c.scale_freeze_after)
        a = self.arena
        self._args = (self._plan.table, self._ltab, a.pbuf, a.work, a.diag, self._cfg,
                      self._icfg, a.fst, a.ist)
        old = getattr(self, "_race", None)
        self._race = None
        if c.mode == "hybrid" and c.switch_after is None and c.hybrid_switch == "race":
            self._race = Race(c.race_first, c.race_length, c.race_z)
            # the shadow learns by backprop with the learner's own settings
            self._race_cfg = c.replace(mode="backprop").to_arrays(self._task,
                                                                   cosine_step(self.network))
            if old is not None:  # a race in progress is dropped; the counts go on
                self._race.races, self._race.won, self._race.last = old.races, old.won, old.last

    def configure(self, **changes: Any) -> None:
        """Change settings of a live learner (everything it learned is kept).

        A new ``optimizer`` starts from a clear optimiser state (momentum and moments mean
        nothing to another optimiser); a new ``batch_size`` drops the partial batch.

        Examples
        --------
        >>> from tweenstream import Dense, Network
        >>> model = Learner(Network(2, [Dense(2)]), mode="backprop")
        >>> model.configure(learning_rate=0.1)
        >>> model.config.learning_rate
        0.1
        """
        if "mode" in changes and changes["mode"] != self.config.mode:
            raise ValueError("the mode of a live learner is changed with set_phase(...), "
                             "not configure(mode=...)")
        fixed = [k for k in ("reservoir_size", "reservoir_recency", "scaling", "target_scaling",
                             "reconstruct")
                 if k in changes and changes[k] != getattr(self.config, k)]
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot change on a live learner: its "
                             "reservoir and input stage are allocated once; make a new "
                             "Learner")
        old = self.config
        self.config = self.config.replace(**changes)
        self._apply_config()
        if self.config.optimizer != old.optimizer:  # one optimiser's state means nothing to another
            self._drop_pending()
        elif self.config.batch_size != old.batch_size:  # a partial batch of the old size is dropped
            self.arena.pbuf[lay.P_ACC] = 0.0
            self.arena.ist[lay.N_BATCH_FILL] = 0

    def set_phase(self, phase: str) -> None:
        """Switch the learning rule in effect now: "tween", "tween-heuristic" or "backprop".

        As at a hybrid switch, the optimiser state (momentum, Adam's or AdaGrad's moments
        and step count) and any partial batch are dropped, and the explosion guard starts
        afresh (rate and ceiling 1, no streak, the shadow copy taken now:
        ``safety.new_phase``). On a hybrid learner
        a manual switch ends its schedule; ``set_phase("hybrid")`` starts the schedule again
        (tween until the trigger).

        Examples
        --------
        >>> from tweenstream import Dense, Network
        >>> model = Learner(Network(2, [Dense(2)]), mode="hybrid")
        >>> model.set_phase("backprop"); model.state()["phase"]
        'backprop'
        """
        if phase not in lay.MODES:
            raise ValueError(f"phase must be one of {', '.join(lay.MODES)}, found {phase!r}")
        a = self.arena
        hybrid = self.config.mode == "hybrid"
        if phase == "hybrid":
            if not hybrid:
                raise ValueError(f"phase 'hybrid' needs a learner built with mode='hybrid'; "
                                 f"this one has mode={self.config.mode!r}")
            a.ist[lay.N_PHASE] = lay.M_TWEEN
            a.ist[lay.N_SWITCHED_AT] = -1
            a.ist[lay.N_WIN_FILL] = a.ist[lay.N_WIN_BAD] = 0
            a.fst[lay.S_WIN_SUM], a.fst[lay.S_WIN_BEST] = 0.0, -np.inf
        else:
            a.ist[lay.N_PHASE] = lay.MODES.index(phase)
            if hybrid and a.ist[lay.N_SWITCHED_AT] < 0:
                a.ist[lay.N_SWITCHED_AT] = a.ist[lay.N_SEEN]
        new_phase(a.pbuf, a.fst, a.ist)
        if self._race is not None:
            self._race.cancel()

    def replace_params(self, params: np.ndarray) -> None:
        """Swap in new parameters (e.g. refined ones): the shadow copy and the norms follow,
        the optimiser state and any partial batch are dropped, counters are kept.

        Examples
        --------
        >>> from tweenstream import Dense, Network
        >>> model = Learner(Network(2, [Dense(2)]))
        >>> model.replace_params(np.zeros(6, np.float32)); float(model.arena.params.sum())
        0.0
        """
        params = np.asarray(params, dtype=np.float32)
        if params.shape != self.arena.params.shape or not np.isfinite(params).all():
            raise ValueError(f"parameters must be {self.arena.params.shape[0]} finite float32 "
                             f"values, found shape {params.shape}")
        a = self.arena
        a.pbuf[lay.P_PARAM] = params
        a.pbuf[lay.P_SHADOW] = params
        layer_norms(self._plan.table, a.pbuf, a.diag)
        a.fst[lay.S_NORM2] = a.fst[lay.S_SHADOW_NORM2] = a.diag[lay.D_NORM2].sum()
        a.fst[lay.S_SHADOW_LOSS] = np.inf
        self._drop_pending()
        if self._race is not None:
            self._race.cancel()

    def _drop_pending(self) -> None:
        reset_optimizer(self.arena.pbuf, self.arena.ist)

    @property
    def engine(self) -> Engine:
        """The compiled interpreter of this network's kinds, for the phase in effect (see
        ``engine.learner_engine``)."""
        heuristic = bool(self.arena.ist[lay.N_PHASE] == lay.M_HEURISTIC)
        engine = self._engines.get(heuristic)
        if engine is None:
            engine = self._engines[heuristic] = learner_engine(self._kinds, heuristic)
        return engine

    def warm(self, progress: bool = False) -> None:
        """Compile (or load from the cache) every kernel now, without learning anything.

        With ``progress``, a status line on stderr names the kernels as they compile.

        Examples
        --------
        >>> from tweenstream import Dense, Network
        >>> model = Learner(Network(2, [Dense(2)]))
        >>> model.warm(); model.state()["samples_seen"]
        0
        """
        from tweenstream.runtime.warmup import compile_progress

        with compile_progress(enabled=progress, label=", ".join(self._kinds)):
            empty = np.zeros((0, self.network.n_inputs), dtype=np.float32)
            engine = self.engine
            engine.learn_many(*self._args, empty, self._yc1[:0], self._yr1, True)
            a = self.arena
            engine.predict_many(self._plan.table, a.pbuf, a.work, self._task, empty,
                                self._out1[:0])
            if self._block is not None:
                dense_predict_many(self._plan.table, a.pbuf, self._task, empty, self._out1[:0],
                                   self._block)
            self._input.warm()
            self._targets.warm()

    # --- learning -------------------------------------------------------------------------
    def learn_one(self, x: Any, y: Any = None) -> None:
        """Test-then-train on one sample: score the current prediction, then learn from it.

        ``x`` is a 1-D float array or a dict of features (str or int keys; numbers, str
        categories, None for missing); ``y`` a class label (int, str or bool) or a float / 1-D
        array (regression); none for an autoencoder (``reconstruct``), which learns to
        reproduce ``x`` and remembers its reconstruction error for ``score_one``. A bad sample
        raises and changes nothing.
        """
        if self._reconstruct:
            self._reconstruct_one(x, y)
            return
        if y is None:
            raise TypeError("learn_one needs y (a label or a target); only a learner with "
                            "reconstruct=True learns without one")
        plan = None
        if self._classify:
            assert self.labels is not None
            u = self.labels.unit_of(y)
            if u < 0:
                plan = self.labels.plan((y,))
                u = int(plan[0][0])
            self._yc1[0] = u
        else:
            self._targets.one(y)
        xin = self._input.one(x, learn=True)
        if self._vocab:
            check_ids(xin[0], self._vocab)
        if not self._classify:
            self._targets.learn()
        if self._learn(xin, self._yc1, self._yr1) >= 0:
            raise ValueError("x or y contains NaN or inf (or a value beyond float32's range, "
                             "about 3.4e38); nothing was learned. Clean or drop the sample")
        self._input.commit()
        if plan is not None:
            self.labels.commit(plan)  # type: ignore[union-attr]
        if self.reservoir is not None:  # inputs as given: refinement scales them anew
            self.reservoir.add_one(self._input.raw[0], self._yc1 if self._classify
                                   else self._targets.given(self._yr1))

    def learn_many(self, X: Any, Y: Any = None) -> None:
        """Learn from every row of ``X`` in order, inside compiled code.

        ``X`` is a 2-D array or a list of dicts; ``Y`` the labels or targets (none for an
        autoencoder: it learns to reproduce X). All rows are validated first: if any is bad,
        nothing is learned and the error names the first.
        """
        if Y is None and not self._reconstruct:
            raise TypeError("learn_many needs Y (labels or targets); only a learner with "
                            "reconstruct=True learns without them")
        if Y is not None and self._reconstruct:
            raise TypeError("an autoencoder (reconstruct=True) learns to reproduce X: give "
                            "no Y")
        stage = self._input
        rows, dicts = stage.batch(X, learn=True)
        try:
            n = rows.shape[0]
            if self._vocab:
                check_ids(rows, self._vocab)
            if not dicts and (not stage.passthrough(dicts) or self.target_scaler is not None):
                # before any statistics learn from the batch (dict rows were checked as they
                # were read; unscaled arrays are checked by the engine's own first pass)
                _check_finite(rows)
            plan = None
            if self._classify:
                assert self.labels is not None
                plan = self.labels.plan_many(Y, n)
                Yc, Yr = plan[0], self._yr1
            elif self._reconstruct:  # the targets are the network rows themselves
                Yc, Yr = self._yc1, rows
            else:  # last: standardised targets are counted into their statistics here
                Yc, Yr = self._yc1, self._targets.batch(Y, n)
            if stage.passthrough(dicts):
                self._learn_rows(rows, Yc, Yr)
            else:
                for start, z in stage.chunks(rows, dicts, learn=True):
                    stop = start + z.shape[0]
                    if self._classify:
                        self._learn_rows(z, Yc[start:stop], Yr, start, rows[start:stop])
                    elif self._reconstruct:
                        self._learn_rows(z, Yc, z, start, rows[start:stop])
                    else:
                        self._learn_rows(z, Yc, Yr[start:stop], start, rows[start:stop])
        except (TypeError, ValueError):
            stage.rollback()
            raise
        stage.commit()
        if plan is not None:
            self.labels.commit(plan)  # type: ignore[union-attr]

    def _learn_rows(self, Xm: np.ndarray, Yc: np.ndarray, Yr: np.ndarray, offset: int = 0,
                    raw: np.ndarray | None = None) -> None:
        """Learn network-ready rows (float32) in one call into compiled code; the reservoir
        keeps them as given (``raw``)."""
        bad = self._learn(Xm, Yc, Yr)
        if bad >= 0:
            if not np.isfinite(Xm[bad]).all():
                why = "X has NaN or inf"
            else:
                why = "y has NaN or inf"
            raise ValueError(f"row {bad + offset}: {why}; nothing was learned. Fix or drop "
                             "that row")
        if self.reservoir is not None:
            given = Xm if raw is None else raw
            self.reservoir.add_many(given, Yc if self._classify else given if self._reconstruct
                                    else self._targets.given(Yr))
        if self.anomaly is not None:  # the batch's errors, after learning it: an estimate
            self._remember_errors(Xm)

    def _racing(self) -> bool:
        """Whether a hybrid's race schedule is in effect: still tweening, not yet switched."""
        ist = self.arena.ist
        return self._race is not None and ist[lay.N_PHASE] == lay.M_TWEEN \
            and ist[lay.N_SWITCHED_AT] < 0

    def _learn(self, X: np.ndarray, Yc: np.ndarray, Yr: np.ndarray) -> int:
        """The engine learns network-ready rows ``X`` (labels ``Yc`` or targets ``Yr``, each
        per row or a one-row placeholder); a hybrid's race (``runtime/race.py``) runs beside
        it. Returns the index of the first bad row (nothing learned) or -1."""
        if not self._racing():
            return self.engine.learn_many(*self._args, X, Yc, Yr, True)
        a, race = self.arena, self._race
        assert race is not None
        n, at = X.shape[0], 0
        per_row = n > 1
        # the rows go in pieces: all are checked here, once, before any is learned
        bad = _first_bad_row(X, Yc if per_row and self._classify else None,
                             self.network.n_outputs,
                             Yr if per_row and Yr.shape[0] == n else None)
        if bad >= 0:
            return bad
        check = not per_row  # one row: the engine checks it, as without a race
        while True:
            take = n - at
            if self._racing():
                due = race.rows_until_event(int(a.ist[lay.N_SEEN]))
                if due == 0 and race.start >= 0:  # half-way, a block's end or the end
                    race.event(a)
                    continue
                if due == 0 and at < n:
                    race.begin(a, self._plan.table, self._ltab, *self._race_cfg)
                    continue
                take = min(due, take)
            if at == n:
                return -1
            stop = at + take
            xc = X[at:stop]
            yc = Yc[at:stop] if per_row and Yc.shape[0] == n else Yc
            yr = Yr[at:stop] if per_row and Yr.shape[0] == n else Yr
            bad = self.engine.learn_many(*self._args, xc, yc, yr, check)
            if bad >= 0:
                return bad + at
            if race.start >= 0:  # the same rows, already checked
                self.engine.learn_many(*race.args, xc, yc, yr, False)
            at = stop

    def network_targets(self, Y: np.ndarray) -> np.ndarray:
        """The engine's target rows for regression targets ``Y`` (n, K), scaled with the
        current statistics (refinement learns them); an autoencoder's are its inputs' rows."""
        if self._reconstruct:
            return self.network_inputs(Y)
        return self._targets.network(Y)

    # --- autoencoders (reconstruct=True) --------------------------------------------------------
    def _reconstruct_one(self, x: Any, y: Any) -> None:
        """``learn_one`` of an autoencoder: the error before learning goes to the window."""
        if y is not None:
            raise TypeError("an autoencoder (reconstruct=True) learns to reproduce x: give "
                            "no y")
        xin = self._input.one(x, learn=True)
        error = self._error(xin)
        np.copyto(self._yr1, xin)
        if self._learn(xin, self._yc1, self._yr1) >= 0:
            raise ValueError("x contains NaN or inf (or a value beyond float32's range, about "
                             "3.4e38); nothing was learned. Clean or drop the sample")
        self._input.commit()
        if self.anomaly is not None and error == error:
            self.anomaly.add(error)
        if self.reservoir is not None:
            raw = self._input.raw[0]
            self.reservoir.add_one(raw, raw)

    def _error(self, xin: np.ndarray) -> float:
        """Mean squared reconstruction error of one network row (standardised units)."""
        out = self._forward(xin, self._out1)
        np.subtract(out, xin, out=out)
        return float(np.einsum("ij,ij->", out, out)) / out.shape[1]

    def _remember_errors(self, Xm: np.ndarray) -> None:
        assert self.anomaly is not None
        tail = Xm[-self.anomaly.size:]
        out = self._forward(tail, np.empty_like(tail))
        errors = ((out - tail) ** 2).mean(axis=1)
        for e in errors[np.isfinite(errors)]:
            self.anomaly.add(float(e))

    def error_one(self, x: Any) -> float:
        """An autoencoder's mean squared reconstruction error of ``x`` (in standardised
        units), without learning.

        Examples
        --------
        >>> from tweenstream import Dense, Network
        >>> ae = Learner(Network(4, [Dense(2, "tanh"), Dense(4)], task="regression"),
        ...              reconstruct=True)
        >>> ae.error_one([0.1, 0.2, 0.3, 0.4]) >= 0.0
        True
        """
        self._need_autoencoder("error_one")
        return self._error(self._input.one(x, learn=False))

    def score_one(self, x: Any) -> float:
        """An autoencoder's anomaly score of ``x``, without learning: the rank of its
        reconstruction error among the last ``metric_window`` learned samples' (0.5 typical,
        near 1 rare; 0.5 before any sample was learned).

        Examples
        --------
        >>> import numpy as np
        >>> from tweenstream import Dense, Network
        >>> ae = Learner(Network(4, [Dense(2, "tanh"), Dense(4)], task="regression"),
        ...              reconstruct=True, mode="backprop", seed=0)
        >>> rng = np.random.default_rng(0)
        >>> for _ in range(2000):
        ...     t = rng.normal()
        ...     ae.learn_one([t, 2 * t, -t, 0.5 * t])  # a line in 4-D
        >>> ae.score_one([1.0, 2.0, -1.0, 0.5]) < 0.9 < ae.score_one([1.0, -2.0, 1.0, 3.0])
        True
        """
        self._need_autoencoder("score_one")
        assert self.anomaly is not None
        return self.anomaly.rank(self._error(self._input.one(x, learn=False)))

    def _need_autoencoder(self, what: str) -> None:
        if not self._reconstruct:
            raise TypeError(f"{what} is for an autoencoder: make the learner with "
                            "reconstruct=True")

    def outputs(self, out: np.ndarray) -> np.ndarray:
        """Network outputs (n, K) in the targets' units (regression; in place)."""
        return self._targets.outputs(out)

    @property
    def target_scaler(self) -> Scaler | None:
        """The regression targets' standardisation (``runtime.scaling.Scaler``), or None."""
        return self._targets.scaler

    # --- prediction -----------------------------------------------------------------------
    def _forward(self, Xm: np.ndarray, out: np.ndarray) -> np.ndarray:
        if self._vocab:
            check_ids(Xm, self._vocab)
        a = self.arena
        if self._block is not None:
            bad = dense_predict_many(self._plan.table, a.pbuf, self._task, Xm, out, self._block)
        else:
            bad = self.engine.predict_many(self._plan.table, a.pbuf, a.work, self._task, Xm, out)
        if bad:
            rows = np.flatnonzero(np.isnan(out).any(axis=1))
            if np.isfinite(Xm[rows]).all():
                raise FloatingPointError(f"the model's output is not finite for rows "
                                         f"{rows[:5].tolist()} (finite inputs): its weights "
                                         "overflow on them")
            raise ValueError(f"rows {rows[:5].tolist()} of X have NaN or inf (or values beyond "
                             "float32's range); clean them before predicting")
        return out

    def _inputs(self, X: Any) -> np.ndarray:
        rows, dicts = self._input.batch(X, learn=False)
        return self._input.matrix(rows, dicts)

    def predict_proba_one(self, x: Any) -> dict[Any, float]:
        """Class probabilities of one sample, as ``{label: probability}`` over the classes
        seen so far (empty before the first)."""
        self._need_classifier("predict_proba_one")
        p = self._forward(self._input.one(x, learn=False), self._out1)[0]
        assert self.labels is not None
        return self.labels.proba(p)

    def predict_one(self, x: Any) -> Any:
        """The predicted class label (None before any class was seen), or the predicted
        value(s) (regression)."""
        out = self._forward(self._input.one(x, learn=False), self._out1)[0]
        if self._classify:
            assert self.labels is not None
            return self.labels.best(out)
        out = self.outputs(self._out1)[0]
        return float(out[0]) if out.shape[0] == 1 else out.copy()

    def predict_proba_many(self, X: Any) -> np.ndarray:
        """Probabilities of every output unit for every row of X, shape (n, n_outputs);
        column k belongs to ``labels.label(k)`` (None for a unit no class holds yet)."""
        self._need_classifier("predict_proba_many")
        Xm = self._inputs(X)
        return self._forward(Xm, np.empty((Xm.shape[0], self.network.n_outputs), np.float32))

    def predict_many(self, X: Any) -> np.ndarray:
        """Predicted labels (n,) (int64 if every class is an int, else object; None before
        any class was seen) or values ((n,) for one output, else (n, n_outputs))."""
        Xm = self._inputs(X)
        out = self._forward(Xm, np.empty((Xm.shape[0], self.network.n_outputs), np.float32))
        if self._classify:
            assert self.labels is not None
            return self.labels.decode(out)
        out = self.outputs(out)
        return out[:, 0].copy() if out.shape[1] == 1 else out

    def network_inputs(self, X: np.ndarray) -> np.ndarray:
        """The float32 rows the network reads for raw rows ``X`` (n, n_inputs), as the replay
        reservoir keeps them (NaN: a missing dict feature), scaled with the current statistics.

        Examples
        --------
        >>> from tweenstream import Dense, Network
        >>> model = Learner(Network(2, [Dense(2)]))
        >>> model.set_scaling([1.0, 1.0], [2.0, 2.0])
        >>> model.network_inputs(np.array([[3.0, np.nan]])).tolist()
        [[1.0, 0.0]]
        """
        return self._input.network_inputs(X)

    def set_scaling(self, mean: Any, std: Any) -> None:
        """Standardise inputs with given statistics from now on (they are no longer learned).

        Examples
        --------
        >>> from tweenstream import Dense, Network
        >>> model = Learner(Network(2, [Dense(2)]))
        >>> model.set_scaling([0.0, 10.0], [1.0, 5.0]); model.scaler.mean.tolist()
        [0.0, 10.0]
        """
        if self._input.scaler is None:
            raise ValueError("this learner does not scale its input (scaling='off', or an "
                             "input that is not flat and real-valued); build it with "
                             "scaling='online'")
        self._input.scaler.set(mean, std)

    @property
    def scaler(self) -> Any:
        """The input standardisation stage (``runtime.scaling.Scaler``), or None if off."""
        return self._input.scaler

    def _need_classifier(self, what: str) -> None:
        if not self._classify:
            raise TypeError(f"{what} needs a classification network; use predict_one")

    # --- introspection --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Counters, rates and per-layer diagnostics (cheap: O(layers)).

        Keys: mode, phase, samples_seen, updates, adaptive_rate, rate_ceiling, explosions,
        rollbacks, storms (shadow copies rolled back to 3 or more times),
        rollbacks_to_snapshot (to the current shadow copy), most_rollbacks_to_one_snapshot,
        rejected, samples_since_rollback, running_loss, running_accuracy (or running_mae),
        prequential_accuracy (or prequential_mae), switched_at, races,
        races_won_by_backprop, racing, last_race_losses (a hybrid's races,
        ``runtime/race.py``; 0, 0, False and None for other learners), recent_explosions,
        diagnostics_every, diagnostics_at (the sample at which the layers' gaps, link budgets
        and depth barriers were last computed; 0 before any), layers, gradient_warnings.

        Each layer has its ``kind``, ``gap``, ``link_budget``, ``depth_barrier``, and the two
        multipliers of its tween rate: ``depth_scale`` and ``type_rate`` (docs/tweening.md).
        Each layer also has ``grad_rms`` in the backprop phase (None otherwise): the root mean
        square of its recent gradients, read from the optimiser's state (Adam's or AdaGrad's
        second moment; SGD's velocity times 1 - momentum), and ``gradient`` ("ok",
        "vanishing" or "exploding", ``gradient_health``). ``gradient_warnings`` lists the
        layers that are not "ok".
        """
        a, f, n = self.arena, self.arena.fst, self.arena.ist
        scored = max(int(n[lay.N_SEEN] - n[lay.N_REJECTED]), 1)
        metric = "accuracy" if self._classify else "mae"
        events = []
        for k in range(lay.EVENT_RING):
            j = (int(n[lay.N_EVENT_HEAD]) + k) % lay.EVENT_RING
            sample, reason = n[lay.N_EVENTS + 2 * j], n[lay.N_EVENTS + 2 * j + 1]
            if reason:
                events.append({"sample": int(sample), "reason": lay.REASONS[int(reason)]})
        rms = self._grad_rms()
        health = gradient_health(rms)
        layers = [{
            "kind": kind_of(spec).name,
            "gap": float(a.diag[lay.D_GAP, i]),
            "link_budget": float(a.diag[lay.D_BUDGET, i]),
            "depth_barrier": float(a.diag[lay.D_BARRIER, i]),
            "depth_scale": float(self._ltab[i, lay.LT_DEPTH]),
            "type_rate": float(self._ltab[i, lay.LT_TYPE_RATE]),
            "grad_rms": rms[i],
            "gradient": health[i],
        } for i, (spec, _, _) in enumerate(self.network.rows)]
        switched = int(n[lay.N_SWITCHED_AT])
        return {
            "mode": self.config.mode,
            "phase": lay.MODES[int(n[lay.N_PHASE])],
            "samples_seen": int(n[lay.N_SEEN]),
            "updates": int(n[lay.N_UPDATES]),
            "adaptive_rate": float(f[lay.S_RATE]),
            "rate_ceiling": float(ceiling.py_func(self._cfg, n)),  # the kernels' formula
            "explosions": int(n[lay.N_EXPLOSIONS]),
            "rollbacks": int(n[lay.N_ROLLBACKS]),
            "storms": int(n[lay.N_STORMS]),
            "rollbacks_to_snapshot": int(n[lay.N_SNAP_ROLLBACKS]),
            "most_rollbacks_to_one_snapshot": int(n[lay.N_MOST_SNAP_ROLLBACKS]),
            "rejected": int(n[lay.N_REJECTED]),
            "samples_since_rollback": int(n[lay.N_SINCE_ROLLBACK]),
            "running_loss": float(f[lay.S_LOSS]),
            f"running_{metric}": float(f[lay.S_METRIC]),
            f"prequential_{metric}": float(f[lay.S_METRIC_SUM]) / scored,
            "switched_at": None if switched < 0 else switched,
            **(Race.idle() if self._race is None else self._race.state()),
            "recent_explosions": events,
            "diagnostics_every": self.config.diagnostics_every,
            "diagnostics_at": int(n[lay.N_DIAG_AT]),
            "layers": layers,
            "gradient_warnings": [{"layer": i, "kind": layer["kind"],
                                   "gradient": layer["gradient"]}
                                  for i, layer in enumerate(layers)
                                  if layer["gradient"] != "ok"],
        }

    def _grad_rms(self) -> list[float | None]:
        """Per layer, the RMS of recent gradients from the optimiser's state (backprop phase,
        after a step; None otherwise or for a layer without parameters)."""
        n = self.arena.ist
        table, pbuf, c = self._plan.table, self.arena.pbuf, self.config
        steps = int(n[lay.N_OPT_STEP])
        if lay.MODES[int(n[lay.N_PHASE])] != "backprop" or int(n[lay.N_UPDATES]) == 0:
            return [None] * len(table)
        out: list[float | None] = []
        for row in table:
            p0, k = int(row[lay.C_P]), int(row[lay.C_NP])
            if k == 0:
                out.append(None)
                continue
            if c.optimizer == "adam" and steps > 0:
                v = pbuf[lay.P_SQ, p0:p0 + k]
                out.append(float(np.sqrt(np.mean(v, dtype=np.float64)
                                         / (1.0 - c.beta2 ** steps))))
            elif c.optimizer == "adagrad" and steps > 0:
                out.append(float(np.sqrt(np.mean(pbuf[lay.P_SQ, p0:p0 + k], dtype=np.float64)
                                         / steps)))
            else:
                vel = pbuf[lay.P_VEL, p0:p0 + k].astype(np.float64)
                out.append(float(np.sqrt(np.mean(vel * vel)) * (1.0 - c.momentum)))
        return out

    def totals(self) -> tuple[int, float, float]:
        """Cumulative (samples scored, metric sum, loss sum) of test-then-train scoring.

        The metric is 1/0 correctness (classification) or the mean absolute error over the
        outputs (regression). Differences between two calls score the samples in between.

        Examples
        --------
        >>> from tweenstream import Dense, Network
        >>> model = Learner(Network(2, [Dense(2)]))
        >>> model.learn_one([0.5, 0.5], 1)
        >>> model.totals()[0]
        1
        """
        n, f = self.arena.ist, self.arena.fst
        return (int(n[lay.N_SEEN] - n[lay.N_REJECTED]), float(f[lay.S_METRIC_SUM]),
                float(f[lay.S_LOSS_SUM]))

    @property
    def features(self) -> list[list[Any]]:
        """The slot of every dict feature seen so far: ``[name, slot]`` or, for a category
        (a str value), ``[name, value, slot]``. Empty for array input."""
        return self._input.slots.to_list()

    @property
    def classes(self) -> list[Any]:
        """The class labels seen so far, by output unit (classification)."""
        return self.labels.classes if self.labels is not None else []

    # --- copies and files -------------------------------------------------------------------
    def clone(self, new_params: dict[str, Any] | None = None,
              include_state: bool = False) -> Learner:
        """A new learner with the same network, settings and seed.

        As in River, the clone is fresh (untrained), with ``new_params`` (settings, ``seed``
        or ``network``) replacing the current ones; with ``include_state`` (and no
        ``new_params``) it is an exact copy that continues identically.

        Examples
        --------
        >>> from tweenstream import Dense, Network
        >>> model = Learner(Network(2, [Dense(2)]), seed=1)
        >>> model.learn_one([0.5, 0.5], 1)
        >>> fresh = model.clone({"seed": 5, "tween_rate": 0.1})
        >>> fresh.seed, fresh.config.tween_rate, fresh.state()["samples_seen"]
        (5, 0.1, 0)
        """
        if not isinstance(new_params, (dict, type(None))):
            raise TypeError(f"new_params must be a dict of settings, found "
                            f"{type(new_params).__name__}")
        params = dict(new_params or {})
        if params and include_state:
            raise ValueError("a copy with its state keeps its settings: pass new_params or "
                             "include_state, not both")
        network = params.pop("network", self.network)
        seed = params.pop("seed", self.seed)
        config = self.config.replace(**params) if params else self.config
        other = Learner(network, config, seed=seed)
        if include_state:
            other._restore(self._saved_arrays(), self._meta())
        return other

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        """Pickle as a model file's bytes (JSON manifest and arrays): unpickling rebuilds the
        learner through ``persist.from_bytes``, never from pickled internals.

        Examples
        --------
        >>> import pickle
        >>> from tweenstream import Dense, Network
        >>> model = Learner(Network(2, [Dense(2)]), seed=1)
        >>> model.learn_one([0.5, 0.5], 1)
        >>> pickle.loads(pickle.dumps(model)).state()["samples_seen"]
        1
        """
        from tweenstream.runtime.persist import from_bytes, to_bytes

        return from_bytes, (to_bytes(self),)

    def __copy__(self) -> Learner:
        """A copy is a deep copy: a learner's buffers are never shared."""
        return self.__deepcopy__({})

    def __deepcopy__(self, memo: dict[int, Any]) -> Learner:
        """An exact, independent copy, through the model-file format as pickling is."""
        from tweenstream.runtime.persist import from_bytes, to_bytes

        return from_bytes(to_bytes(self))

    def _arrays(self) -> dict[str, np.ndarray]:
        a = self.arena
        arrays: dict[str, np.ndarray] = {"pbuf": a.pbuf, "diag": a.diag, "fst": a.fst, "ist": a.ist}
        sc = self._input.scaler
        if sc is not None:
            arrays.update(scale_stats=sc.stats, scale_seen=sc.seen)
        if self.target_scaler is not None:
            arrays.update(target_stats=self.target_scaler.stats,
                          target_seen=self.target_scaler.seen)
        if self._classify:
            arrays["seen_units"] = self._seen_units()
        if self.reservoir is not None:
            arrays.update(self.reservoir.arrays())
        if self.anomaly is not None:
            arrays["anomaly_window"] = self.anomaly.buf
        return arrays

    def _saved_arrays(self) -> dict[str, np.ndarray]:
        """Every array a model file holds: ``_arrays`` and, mid-race, the race's shadow."""
        return {**self._arrays(), **({} if self._race is None else self._race.arrays())}

    def _saved_nbytes_max(self) -> int:
        """The most array bytes a model file of this learner can hold: a hybrid's race in
        progress adds a copy of the arena."""
        a = self.arena
        race = 0 if self._race is None else sum(getattr(a, n).nbytes for n in Race.BUFFERS)
        return sum(x.nbytes for x in self._arrays().values()) + race

    def _seen_units(self) -> np.ndarray:
        """The engine's record of the output units a class was learned on (a view)."""
        work, k = self.arena.work, self.network.n_outputs
        return work[lay.W_SEEN, work.shape[1] - k:]

    def _meta(self) -> dict[str, Any]:
        """Everything but the arrays that a copy needs: JSON-ready."""
        return {"features": self.features,
                "classes": self.labels.to_list() if self.labels is not None else None,
                "rng_state": self._rng.bit_generator.state,
                "reservoir": self.reservoir.meta() if self.reservoir is not None else None,
                "race": self._race.meta() if self._race is not None else None}

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Take the state of ``_arrays`` and ``_meta`` (``ValueError`` on a bad value)."""
        from tweenstream.runtime.features import FeatureSlots

        slots = FeatureSlots.from_list(meta.get("features") or [], self.network.n_inputs)
        labels = None
        if self.labels is not None:
            classes = meta.get("classes")
            labels = LabelMap.from_list(list(range(self.network.n_outputs)) if classes is None
                                        else classes, self.network.n_outputs)
        for name, buf in self._arrays().items():
            if name in ("scale_stats", "scale_seen", "target_stats", "target_seen"):
                continue
            if name == "seen_units" and name not in arrays:  # a file from before labels
                buf[...] = labels.seen if labels is not None else 0.0
                continue
            buf[...] = arrays[name]
        sc = self._input.scaler
        if sc is not None:
            sc.restore(arrays["scale_stats"], arrays["scale_seen"])
        if self.target_scaler is not None:
            self.target_scaler.restore(arrays["target_stats"], arrays["target_seen"])
        self._input.slots = slots
        self.labels = labels
        self._rng.bit_generator.state = meta["rng_state"]
        if self.reservoir is not None:
            if meta.get("reservoir") is None:
                raise ValueError("the reservoir's state is missing")
            self.reservoir.restore(arrays, meta["reservoir"])
        if self._race is not None and meta.get("race") is not None:
            self._race.restore(meta["race"], arrays, self.arena, self._plan.table, self._ltab,
                               *self._race_cfg)

    def save(self, path: Any) -> None:
        """Write the learner to ``path`` atomically (JSON manifest + arrays, never pickle)."""
        from tweenstream.runtime.persist import save

        save(self, path)

    @classmethod
    def load(cls, path: Any) -> Learner:
        """Read a learner written by ``save``; it continues exactly where it stopped."""
        from tweenstream.runtime.persist import load

        return load(path)

    def __repr__(self) -> str:
        return f"Learner({self.network!r}, mode={self.config.mode!r}, seed={self.seed})"


def _first_bad_row(X: np.ndarray, labels: np.ndarray | None, n_classes: int,
                   targets: np.ndarray | None) -> int:
    """The row the engine's own check would name: the first with a non-finite input or an
    out-of-range label, else the first with a non-finite target; -1 if none.

    >>> X = np.zeros((3, 2), np.float32); X[2, 1] = np.nan
    >>> _first_bad_row(X, np.array([0, 5, 1]), 2, None), _first_bad_row(X[:2], None, 2, X[1:])
    (1, 1)
    """
    bad = ~np.isfinite(X).all(axis=1)
    if labels is not None:
        bad |= (labels < 0) | (labels >= n_classes)
    rows = np.flatnonzero(bad)
    if rows.size:
        return int(rows[0])
    if targets is not None:
        rows = np.flatnonzero(~np.isfinite(targets).all(axis=1))
        if rows.size:
            return int(rows[0])
    return -1


def _check_finite(X: np.ndarray) -> None:
    """``ValueError`` naming the first row of ``X`` with NaN or inf."""
    ok = np.isfinite(X).all(axis=1)
    if not ok.all():
        raise ValueError(f"row {int(np.argmin(ok))}: X has NaN or inf; nothing was learned. "
                         "Fix or drop that row")


def _check_autoencoder(network: Network, config: TweenConfig) -> None:
    """``reconstruct=True`` needs a regression network whose output has its input's shape (a
    sequence (steps, d) to (steps, d), e.g. ending in TimeDense) or is flat and as large."""
    out = network.shapes[-1]
    same = out == network.input_shape or (len(out) == 1 and out[0] == network.n_inputs)
    if network.task != "regression" or not same \
            or any(kind_of(spec).name == "embedding" for spec in network.layers):
        raise ValueError("reconstruct=True needs a regression network of real-valued inputs "
                         "whose output has its input's shape or as many values, found input "
                         f"{network.input_shape}, output {network.shapes[-1]}, task "
                         f"{network.task!r}")
    if config.target_scaling == "online":
        raise ValueError("an autoencoder's targets are its standardised inputs: leave "
                         "target_scaling at 'auto' (or 'off')")


VANISHING = 1e-4  # a layer's gradient RMS below this times the layers' median
EXPLODING = 1e4  # above this times the layers' median


def gradient_health(rms: list[float | None]) -> list[str]:
    """Per layer, "ok", "vanishing" (RMS at or below ``VANISHING`` times the median of the
    layers' RMS) or "exploding" (not finite, or above ``EXPLODING`` times that median).
    Relative, so that the loss's scale does not matter.

    Examples
    --------
    >>> gradient_health([1e-3, 2e-3, 1e-9, None])
    ['ok', 'ok', 'vanishing', 'ok']
    >>> gradient_health([1e-3, float("inf")])
    ['ok', 'exploding']
    """
    known = [r for r in rms if r is not None and np.isfinite(r)]
    middle = float(np.median(known)) if known else 0.0
    out = []
    for r in rms:
        if r is None:
            out.append("ok")
        elif not np.isfinite(r) or (middle > 0 and r > EXPLODING * middle):
            out.append("exploding")
        elif r <= VANISHING * middle:
            out.append("vanishing")
        else:
            out.append("ok")
    return out
