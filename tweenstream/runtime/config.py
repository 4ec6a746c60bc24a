"""TweenConfig: every learning setting, validated, and packed into the interpreter's arrays.

Defaults are Loom's constants where TWEENING.md names one, except where the sweep over the
real-stream suite chose otherwise (the optimiser, the learning and tween rates, the input and
target standardisation: docs/benchmarks.md, "Choosing the defaults"); all are documented in
docs/tweening.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from tweenstream.runtime import layout as lay

_NUMBER = (int, float, np.number)
_MAX_INT = 2**31 - 1
_MAX_FLOAT = 1e30
SCALINGS = ("auto", "online", "off")
_CHOICES = ("mode", "scaling", "target_scaling", "optimizer", "loss",  # str, checked apart
            "hybrid_switch")
HYBRID_SWITCHES = ("race", "plateau")
LOSSES = ("auto", "squared", "cosine")
# Each optimiser's default step size, chosen with the optimiser itself by the sweep over the
# real-stream suite (bench/streams/sweep.py; docs/benchmarks.md, "Choosing the defaults")
LEARNING_RATES = {"sgd": 0.003, "adam": 0.003, "adagrad": 0.1}
_F32_TINY = float(np.finfo(np.float32).tiny)


@dataclass(frozen=True)
class TweenConfig:
    """How a Learner learns. Every field is also a keyword argument of ``Learner``.

    Parameters
    ----------
    mode : {"tween", "tween-heuristic", "backprop", "hybrid"}
        Learning rule (TWEENING.md). ``hybrid`` tweens, then switches to backprop.
    learning_rate, momentum, grad_clip
        Backprop: step size (None: the optimiser's default, ``LEARNING_RATES``), SGD's
        heavy-ball momentum, elementwise gradient clip (None = off).
    optimizer : {"sgd", "adam", "adagrad"}
        Backprop's optimiser (also hybrid's after its switch), with PyTorch's semantics:
        ``"sgd"`` is heavy-ball SGD with ``momentum``; ``"adam"`` (default) is
        ``torch.optim.Adam`` (no weight decay, no amsgrad); ``"adagrad"`` is
        ``torch.optim.Adagrad`` (no learning-rate decay, accumulator starting at 0). Adam and
        AdaGrad step every ``batch_size`` samples (every sample by default) with the mean
        gradient. ``learning_rate`` is the step size of all three (PyTorch's Adam defaults to
        1e-3, its AdaGrad to 1e-2). Tween phases ignore this setting.
    beta1, beta2
        Adam's decay rates of the first and second moment, in [0, 1) (0.9 and 0.999).
    epsilon
        Adam and AdaGrad: added to the root of the second moment, > 0 (1e-8; PyTorch's AdaGrad
        defaults to 1e-10).
    tween_rate, tween_momentum, gradient_scale, delta_clip
        Tween: base rate r, EMA momentum m, target step s, per-element update clip.
    depth_scale_factor, depth_scale_cap
        D = factor^d' (capped) for a layer d steps below the output.
    ignore_threshold, chain_gate
        Link-budget gate: always on in heuristic mode, optional in chain mode.
    local_derivative, weight_rate_multiplier, bias_rate_multiplier
        Heuristic update (Loom's multipliers by default; ``local_derivative=False`` then
        reproduces Loom's code).
    batch_size
        Apply the mean of this many per-sample updates at once (1 = per sample).
    soft_detection, explosion_limit, explosion_warmup, fast_window, slow_window,
    explosion_norm_growth
        Soft explosion trigger: fast EMA of the mean gap > limit x slow EMA, after warm-up,
        while the parameter norm is above ``explosion_norm_growth`` x the shadow copy's.
    max_param_jump
        Hard trigger: parameter norm growing more than this factor in one step.
    snapshot_every, backoff, backoff_after_5, backoff_after_10, rate_floor, recovery_rate,
    streak_reset
        Recovery: shadow refresh period, rate back-off factors, floor, per-clean-step recovery,
        and the clean steps after which the back-off streak is forgotten.
    switch_after, hybrid_switch, race_first, race_length, race_z
        Hybrid trigger. ``switch_after``: switch after that many samples. Otherwise
        ``hybrid_switch="race"`` (default): after ``race_first`` samples, then after twice as
        many each time, a backprop copy of the model learns the next ``race_length`` samples
        beside tween; if over the race's second half its loss is below tween's by more than
        ``race_z`` standard errors of the paired differences, the learner switches to it
        (``runtime/race.py``).
        ``"plateau"``: switch when the prequential metric stops improving.
    plateau_window, plateau_patience, plateau_min_gain
        The plateau trigger's window, patience (windows) and minimum gain.
    metric_window
        Window (EMA) of the running loss and prequential metric in ``state()``.
    diagnostics_every
        Compute the per-layer gaps, link budgets and depth barrier, and run the soft explosion
        trigger, on every this many samples (1, the default: every sample). Fewer measurements
        make SGD and tween steps about 5% cheaper, and the soft trigger slower to react: it is
        tween's main guard, so the default keeps it on every sample. Modes that learn from them
        (``tween-heuristic``, and ``tween`` with ``chain_gate``) compute them on every sample
        anyway. The hard triggers (non-finite output, non-finite parameters, a parameter-norm
        jump) are checked on every sample whatever this is; the soft trigger's windows count
        measurements (``fast_window`` x k samples). The shadow copy a rollback returns to is
        refreshed only on a measured sample. ``state()["diagnostics_at"]`` is
        the sample at which they were last computed.
    scaling : {"auto", "online", "off"}
        The model's input stage: online standardisation of every input feature (running mean
        and variance, saved with the model and exported into the ONNX graph). ``auto`` scales
        flat real-valued inputs (dicts and tabular vectors), not images, sequences or token
        ids; fixed statistics are set with ``Learner.set_scaling``.
    scale_clip, scale_freeze_after
        Bound on a standardised value, in standard deviations (None: no bound); stop learning
        the statistics after this many samples (None: never).
    target_scaling : {"auto", "online", "off"}
        Regression: learn standardised targets (running mean and variance, as ``scaling``)
        and answer in the targets' units; ``auto`` does for every regression network.
    loss, cosine_weight
        The loss: ``auto`` is softmax cross-entropy for classification and squared error for
        regression; ``squared`` says so for regression; ``cosine`` (regression) mixes
        ``cosine_weight`` of cosine loss, 1 - cos(output, target), with the rest of squared
        error (0.9: 90% cosine, 10% squared error; 1.0: cosine alone). On a sequence output
        (e.g. TimeDense's) the cosine is taken per step and averaged over the steps.
    reconstruct
        An autoencoder: a regression network whose output has its input's shape
        learns to reproduce its (standardised) input, so a stream needs no targets
        (``learn_one(x)``), and ``score_one(x)`` ranks a sample's reconstruction error among
        the last ``metric_window`` learned ones (an anomaly score in [0, 1]).
    reservoir_size, reservoir_recency
        Keep a replay reservoir of this many samples (0: none), uniform over the stream or,
        with recency > 0, biased toward recent samples (``runtime/reservoir.py``).

    Examples
    --------
    >>> TweenConfig(mode="backprop", learning_rate=0.05).learning_rate
    0.05
    >>> TweenConfig(mode="backprop", optimizer="adam", learning_rate=1e-3).beta2
    0.999
    """

    mode: str = "tween"
    learning_rate: float | None = None
    momentum: float = 0.9
    grad_clip: float | None = None
    optimizer: str = "adam"
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    tween_rate: float = 0.3  # Loom's 1.0 overshoots on standardised inputs (the sweep)
    tween_momentum: float = 0.9
    gradient_scale: float = 0.1
    delta_clip: float = 1.0
    depth_scale_factor: float = 1.0
    depth_scale_cap: float = 100.0
    ignore_threshold: float = 0.2
    chain_gate: bool = False
    local_derivative: bool = True
    weight_rate_multiplier: float = 0.01
    bias_rate_multiplier: float = 0.1
    batch_size: int = 1
    soft_detection: bool = True
    explosion_limit: float = 4.0
    explosion_warmup: int = 100
    fast_window: int = 20
    slow_window: int = 2000
    max_param_jump: float = 10.0
    explosion_norm_growth: float = 1.5
    snapshot_every: int = 1000
    backoff: float = 0.7
    backoff_after_5: float = 0.5
    backoff_after_10: float = 0.3
    rate_floor: float = 0.01
    recovery_rate: float = 1.05
    streak_reset: int = 100
    switch_after: int | None = None
    hybrid_switch: str = "race"
    race_first: int = 1000
    race_length: int = 500
    race_z: float = 2.0
    plateau_window: int = 1000
    plateau_patience: int = 3
    plateau_min_gain: float = 0.005
    metric_window: int = 1000
    diagnostics_every: int = 1
    reservoir_size: int = 0
    reservoir_recency: float = 0.0
    scaling: str = "auto"
    scale_clip: float | None = 8.0
    scale_freeze_after: int | None = None
    target_scaling: str = "auto"
    reconstruct: bool = False
    loss: str = "auto"
    cosine_weight: float = 0.9

    def __post_init__(self) -> None:
        if self.mode not in lay.MODES:
            raise ValueError(f"mode must be one of {', '.join(lay.MODES)}, found {self.mode!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, found {self.loss!r}")
        if self.hybrid_switch not in HYBRID_SWITCHES:
            raise ValueError(f"hybrid_switch must be one of {', '.join(HYBRID_SWITCHES)}, found "
                             f"{self.hybrid_switch!r}")
        for name in ("scaling", "target_scaling"):
            if getattr(self, name) not in SCALINGS:
                raise ValueError(f"{name} must be one of {', '.join(SCALINGS)}, found "
                                 f"{getattr(self, name)!r}")
        if not isinstance(self.optimizer, str):
            raise TypeError(f"optimizer must be a string, one of {', '.join(lay.OPTIMIZERS)}; "
                            f"found {type(self.optimizer).__name__}")
        if self.optimizer not in lay.OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(lay.OPTIMIZERS)}, found "
                             f"{self.optimizer!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _CHOICES or value is None:
                continue
            if f.type in ("bool",):
                if not isinstance(value, (bool, np.bool_)):
                    raise TypeError(f"{f.name} must be True or False, found {value!r}")
                continue
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, _NUMBER):
                raise TypeError(f"{f.name} must be a number, found {type(value).__name__}")
            if isinstance(value, np.generic):  # plain Python numbers, so the config saves as JSON
                value = value.item()
                object.__setattr__(self, f.name, value)
            if "int" in str(f.type) and "float" not in str(f.type):
                if value != int(value):
                    raise TypeError(f"{f.name} must be an integer, found {value!r}")
                if abs(value) > _MAX_INT:
                    raise ValueError(f"{f.name} must be at most {_MAX_INT}, found {value!r}")
                object.__setattr__(self, f.name, int(value))
            if not math.isfinite(value):
                raise ValueError(f"{f.name} must be finite, found {value!r}")
            if abs(value) > _MAX_FLOAT:
                raise ValueError(f"{f.name} must be at most {_MAX_FLOAT:g} (the kernels compute "
                                 f"in float32), found {value!r}")
        _check_range(self)

    @property
    def lr(self) -> float:
        """The backprop step size in effect: ``learning_rate``, or the optimiser's default.

        Examples
        --------
        >>> TweenConfig().lr, TweenConfig(optimizer="sgd").lr, TweenConfig(learning_rate=0.1).lr
        (0.003, 0.003, 0.1)
        """
        return LEARNING_RATES[self.optimizer] if self.learning_rate is None else \
            self.learning_rate

    def replace(self, **changes: Any) -> TweenConfig:
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)}; see TweenConfig for the list")
        return TweenConfig(**{**asdict(self), **changes})

    def to_arrays(self, task: int, step: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Pack into the interpreter's float64 ``cfg`` and int64 ``icfg`` arrays; ``step`` is
        the width of one step of a sequence output (``cosine_step``), 0 for a flat one."""
        cfg = np.zeros(lay.NFCFG, dtype=np.float64)
        icfg = np.zeros(lay.NICFG, dtype=np.int64)
        cfg[lay.F_LR] = self.lr
        cfg[lay.F_BP_MOMENTUM] = self.momentum
        cfg[lay.F_GRAD_CLIP] = np.inf if self.grad_clip is None else self.grad_clip
        cfg[lay.F_TWEEN_RATE] = self.tween_rate
        cfg[lay.F_TWEEN_MOMENTUM] = self.tween_momentum
        cfg[lay.F_GRADIENT_SCALE] = self.gradient_scale
        cfg[lay.F_DELTA_CLIP] = self.delta_clip
        cfg[lay.F_IGNORE] = self.ignore_threshold
        cfg[lay.F_WEIGHT_MULT] = self.weight_rate_multiplier
        cfg[lay.F_BIAS_MULT] = self.bias_rate_multiplier
        cfg[lay.F_EXPLOSION_LIMIT] = self.explosion_limit
        cfg[lay.F_MAX_JUMP] = self.max_param_jump
        cfg[lay.F_FAST_ALPHA] = 1.0 / self.fast_window
        cfg[lay.F_SLOW_ALPHA] = 1.0 / self.slow_window
        cfg[lay.F_BACKOFF] = self.backoff
        cfg[lay.F_BACKOFF5] = self.backoff_after_5
        cfg[lay.F_BACKOFF10] = self.backoff_after_10
        cfg[lay.F_RATE_FLOOR] = self.rate_floor
        cfg[lay.F_RECOVERY] = self.recovery_rate
        cfg[lay.F_METRIC_ALPHA] = 1.0 / self.metric_window
        cfg[lay.F_PLATEAU_GAIN] = self.plateau_min_gain
        cfg[lay.F_NORM_GROWTH] = self.explosion_norm_growth
        cfg[lay.F_BETA1] = self.beta1
        cfg[lay.F_BETA2] = self.beta2
        cfg[lay.F_EPSILON] = self.epsilon
        icfg[lay.I_MODE] = lay.MODES.index(self.mode)
        icfg[lay.I_TASK] = task
        icfg[lay.I_BATCH] = self.batch_size
        icfg[lay.I_SNAPSHOT_EVERY] = self.snapshot_every
        icfg[lay.I_WARMUP] = self.explosion_warmup
        icfg[lay.I_SWITCH_AFTER] = self.switch_after or 0
        icfg[lay.I_PLATEAU_WINDOW] = self.plateau_window \
            if self.switch_after is None and self.hybrid_switch == "plateau" else 0
        icfg[lay.I_PLATEAU_PATIENCE] = self.plateau_patience
        icfg[lay.I_LOCAL_DERIV] = int(self.local_derivative)
        icfg[lay.I_CHAIN_GATE] = int(self.chain_gate)
        icfg[lay.I_SOFT_DETECT] = int(self.soft_detection)
        icfg[lay.I_STREAK_RESET] = self.streak_reset
        icfg[lay.I_OPTIMIZER] = lay.OPTIMIZERS.index(self.optimizer)
        icfg[lay.I_DIAG_EVERY] = self.diagnostics_every
        cfg[lay.F_COSINE] = self.cosine_weight if self.loss == "cosine" else 0.0
        icfg[lay.I_COSINE_STEP] = step
        return cfg, icfg


def check_loss(loss: str, task: str) -> None:
    """Refuse a regression loss on a classifier (the one check of a loss that needs the task).

    Examples
    --------
    >>> check_loss("cosine", "regression")
    >>> check_loss("cosine", "classification")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: loss='cosine' is for regression; a classifier learns with softmax ...
    """
    if task == "classification" and loss != "auto":
        raise ValueError(f"loss={loss!r} is for regression; a classifier learns with "
                         "softmax cross-entropy (loss='auto')")


def cosine_step(network: Any) -> int:
    """How many outputs one cosine term covers: a step's (the last axis) for a sequence output
    such as TimeDense's (steps, d), 0 (all of them) for a flat output.

    Examples
    --------
    >>> from tweenstream import Dense, Network, TimeDense
    >>> cosine_step(Network((5, 3), [TimeDense(3)], task="regression"))
    3
    >>> cosine_step(Network(3, [Dense(3)], task="regression"))
    0
    """
    shape = network.shapes[-1]
    return int(shape[-1]) if len(shape) > 1 else 0


_POSITIVE = ("scale_clip", "explosion_norm_growth", "learning_rate", "tween_rate",
             "gradient_scale",
             "delta_clip", "depth_scale_factor", "depth_scale_cap", "explosion_limit",
             "max_param_jump", "recovery_rate", "rate_floor", "epsilon")
_AT_LEAST_ONE = ("batch_size", "fast_window", "slow_window", "snapshot_every", "streak_reset",
                 "race_first", "plateau_window", "plateau_patience", "metric_window",
                 "diagnostics_every")
_UNIT = ("momentum", "tween_momentum", "backoff", "backoff_after_5", "backoff_after_10",
         "beta1", "beta2")
_NON_NEGATIVE = ("race_z", "scale_freeze_after", "weight_rate_multiplier", "bias_rate_multiplier",
                 "plateau_min_gain")


def _check_range(c: TweenConfig) -> None:
    for name in _POSITIVE:  # None (where allowed) means off
        if getattr(c, name) is not None and getattr(c, name) <= 0:
            raise ValueError(f"{name} must be > 0, found {getattr(c, name)!r}")
    for name in _AT_LEAST_ONE:
        if getattr(c, name) < 1:
            raise ValueError(f"{name} must be >= 1, found {getattr(c, name)!r}")
    for name in _UNIT:
        if not 0.0 <= getattr(c, name) < 1.0:
            raise ValueError(f"{name} must be in [0, 1), found {getattr(c, name)!r}")
    if not 0.0 <= c.cosine_weight <= 1.0:
        raise ValueError(f"cosine_weight must be in [0, 1], found {c.cosine_weight!r}")
    for name in _NON_NEGATIVE:
        if getattr(c, name) is not None and getattr(c, name) < 0:
            raise ValueError(f"{name} must be >= 0, found {getattr(c, name)!r}")
    if not 0.0 <= c.ignore_threshold <= 1.0:
        raise ValueError(f"ignore_threshold must be in [0, 1], found {c.ignore_threshold!r}")
    if c.recovery_rate < 1.0:
        raise ValueError(f"recovery_rate must be >= 1 (the rate climbs back), found "
                         f"{c.recovery_rate!r}")
    if c.explosion_limit <= 1.0:
        raise ValueError(f"explosion_limit must be > 1, found {c.explosion_limit!r}")
    if c.epsilon < _F32_TINY:  # it would round to 0 (or lose precision) in the float32 kernel
        raise ValueError(f"epsilon must be at least {_F32_TINY:.3g} (float32's smallest normal "
                         f"number), found {c.epsilon!r}")
    if c.grad_clip is not None and c.grad_clip <= 0:
        raise ValueError(f"grad_clip must be > 0 or None, found {c.grad_clip!r}")
    if c.race_length < 2:
        raise ValueError(f"race_length must be >= 2 (its second half is scored), found "
                         f"{c.race_length!r}")
    if c.switch_after is not None and c.switch_after < 1:
        raise ValueError(f"switch_after must be >= 1 or None, found {c.switch_after!r}")
    if c.reservoir_size < 0:
        raise ValueError(f"reservoir_size must be >= 0, found {c.reservoir_size!r}")
    if not 0.0 <= c.reservoir_recency < 1.0:
        raise ValueError(f"reservoir_recency must be in [0, 1), found {c.reservoir_recency!r}")
    if c.rate_floor > 1.0:
        raise ValueError(f"rate_floor must be <= 1, found {c.rate_floor!r}")
    if c.max_param_jump <= 1.0:
        raise ValueError(f"max_param_jump must be > 1, found {c.max_param_jump!r}")
    if c.fast_window >= c.slow_window:
        raise ValueError(f"fast_window ({c.fast_window}) must be smaller than slow_window "
                         f"({c.slow_window})")
