"""The hybrid's switch on evidence: a backprop copy of the model races tween on the same samples.

A hybrid learner tweens until a race says backprop would do better. A race starts after
``race_first`` samples, then after twice as many samples each time (1,000, 2,000, 4,000, ...
by default), while the learner is still tweening. At its start a shadow copy of the model
takes the learner's parameters, a clear optimiser state and a fresh explosion guard, and
switches to backprop. For the next ``race_length`` samples both learn every sample,
test-then-train, in the same order. The first half warms the shadow's optimiser up; on the
second half the two prequential losses are compared in blocks of ``BLOCK`` samples: the learner
switches if the mean of the paired block differences (tween's mean loss minus backprop's) is
above ``race_z`` standard errors of that mean, i.e. backprop is ahead by more than the samples'
noise explains. Blocks start at fixed sample counts, so the decision does not depend on how the
samples were handed over (``learn_one`` or batches of any size). On a switch the learner takes
the shadow's parameters, optimiser state and guard, so backprop goes on from where it stands
after its warm start instead of from tween's weights with a cold optimiser. Otherwise the shadow
is dropped and tween goes on.

The shadow's buffers are allocated once, at the first race, and reused. A race in progress is
saved with the model (the shadow's buffers and the race's tallies), so a learner saved and
loaded mid-race goes on exactly as one that never stopped. During a race the learner does
twice the work per sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tweenstream.runtime import layout as lay
from tweenstream.runtime.arena import Arena
from tweenstream.runtime.safety import new_phase

# what the switch takes over from the shadow: its optimiser and explosion guard
_GUARD_IST = (lay.N_OPT_STEP, lay.N_HOLD, lay.N_STREAK, lay.N_SNAP_ROLLBACKS, lay.N_CLEAN_SNAP,
              lay.N_CLEAN_EVENT, lay.N_SINCE_ROLLBACK, lay.N_BATCH_FILL, lay.N_EMA_STARTED)
_GUARD_FST = (lay.S_RATE, lay.S_NORM2, lay.S_SHADOW_NORM2, lay.S_SHADOW_LOSS, lay.S_FAST,
              lay.S_SLOW)
_COUNTS = (lay.N_EXPLOSIONS, lay.N_ROLLBACKS, lay.N_STORMS)
BLOCK = 10  # samples per scored block of a race's second half


class Race:
    """The race schedule of one hybrid learner, and its shadow copy.

    Examples
    --------
    >>> from tweenstream import Dense, Learner, Network
    >>> import numpy as np
    >>> model = Learner(Network(2, [Dense(8, "tanh"), Dense(2)]), mode="hybrid", seed=0,
    ...                 race_first=100, race_length=50)
    >>> X = np.random.default_rng(0).normal(size=(400, 2)).astype(np.float32)
    >>> model.learn_many(X, (X[:, 0] > 0).astype(int))
    >>> s = model.state(); s["races"] >= 2, s["phase"] in ("tween", "backprop")
    (True, True)
    """

    def __init__(self, first: int, length: int, z: float) -> None:
        self.first, self.length, self.z = first, length, z
        self.shadow: Arena | None = None
        self.args: tuple[Any, ...] = ()
        self.start = -1  # sample count at which the race in progress started, -1 if none
        self.paired = np.zeros(3)  # second half: count, sum and sum of squares of the paired
        # differences (tween's loss - backprop's)
        self.sums = np.zeros(2)  # second half: summed losses of tween and backprop
        self.counts: list[int] = []  # the learner's event counts when the race started
        self.marked = False  # the race is in its second half (scored block by block)
        self.block = np.zeros(5)  # the open block: its first sample, then the learner's and the
        # shadow's loss sums and refused-sample counts at that sample
        self.races = 0
        self.won = 0  # races the shadow won (at most 1: the learner then switches)
        self.last: tuple[float, float] | None = None  # mean losses (tween, backprop), last race

    def next_start(self, seen: int) -> int:
        """The sample count at which the next race starts: the first point of the schedule
        (``first``, ``2 first``, ``4 first``, ...) at or after ``seen``."""
        at = self.first
        while at < seen:
            at *= 2
        return at

    def rows_until_event(self, seen: int) -> int:
        """How many samples can be learned before the race needs attention (>= 0)."""
        if self.start < 0:
            return self.next_start(seen) - seen
        if self.marked:
            return min(self.start + self.length, int(self.block[0]) + BLOCK) - seen
        return self.start + self.length // 2 - seen

    def cancel(self) -> None:
        """Drop the race in progress (the phase or the parameters were changed by hand)."""
        self.start = -1

    def begin(self, main: Arena, table: np.ndarray, ltab: np.ndarray, cfg: np.ndarray,
              icfg: np.ndarray) -> None:
        """Start a race: the shadow becomes a copy of ``main`` that learns by backprop."""
        if self.shadow is None:
            self.shadow = Arena(main.plan)
        sh = self.shadow
        sh.pbuf[:] = main.pbuf
        sh.work[:] = main.work
        sh.diag[:] = main.diag
        sh.fst[:] = main.fst
        sh.ist[:] = main.ist
        sh.ist[lay.N_PHASE] = lay.M_BACKPROP
        sh.ist[lay.N_BATCH_FILL] = 0
        new_phase(sh.pbuf, sh.fst, sh.ist)
        self.args = (table, ltab, sh.pbuf, sh.work, sh.diag, cfg, icfg, sh.fst, sh.ist)
        self.counts = [int(main.ist[i]) for i in _COUNTS]  # the shadow starts from them too
        self.marked = False
        self.start = int(main.ist[lay.N_SEEN])
        self.races += 1

    def event(self, main: Arena) -> None:
        """At the half-way point, open the first block; at a block's end, score it and open
        the next; at the race's end, decide (``finish``)."""
        if not self.marked:
            self.marked = True
            self.paired[:] = 0.0
            self.sums[:] = 0.0
        else:
            self._score(main)
        if int(main.ist[lay.N_SEEN]) >= self.start + self.length:
            self.finish(main)
        else:
            self._open(main)

    def _open(self, main: Arena) -> None:
        assert self.shadow is not None
        self.block[:] = (main.ist[lay.N_SEEN], main.fst[lay.S_LOSS_SUM],
                         self.shadow.fst[lay.S_LOSS_SUM], main.ist[lay.N_REJECTED],
                         self.shadow.ist[lay.N_REJECTED])

    def _score(self, main: Arena) -> None:
        """Pair the block's mean losses (each measured before the sample was learned). A
        block in which either learner refused a sample (an explosion) is left out: its sums
        would cover different samples."""
        sh = self.shadow
        assert sh is not None
        b = self.block
        n = float(main.ist[lay.N_SEEN]) - b[0]
        if n < 1 or main.ist[lay.N_REJECTED] != b[3] or sh.ist[lay.N_REJECTED] != b[4]:
            return
        t = (float(main.fst[lay.S_LOSS_SUM]) - b[1]) / n
        p = (float(sh.fst[lay.S_LOSS_SUM]) - b[2]) / n
        if not (np.isfinite(t) and np.isfinite(p)):
            return
        d = t - p
        self.paired += (1.0, d, d * d)
        self.sums += (t, p)

    def backprop_ahead(self) -> bool:
        """Whether the paired differences say backprop's loss is lower beyond their noise.

        >>> r = Race(100, 10, 2.0)
        >>> r.paired[:] = (100, 100 * 0.02, 100 * (0.02 ** 2 + 0.05 ** 2)); r.backprop_ahead()
        True
        >>> r.paired[:] = (100, 100 * 0.005, 100 * (0.005 ** 2 + 0.05 ** 2)); r.backprop_ahead()
        False
        """
        n, s, s2 = self.paired
        if n < 2:
            return False
        mean = s / n
        var = max(s2 / n - mean * mean, 0.0) * n / (n - 1)
        return bool(mean > 0.0 and mean > self.z * np.sqrt(var / n))

    def finish(self, main: Arena) -> None:
        """End the race; switch ``main`` to the shadow if backprop is ahead
        (``backprop_ahead``)."""
        sh = self.shadow
        assert sh is not None
        n = max(self.paired[0], 1.0)
        self.last = (float(self.sums[0] / n), float(self.sums[1] / n))
        self.start = -1
        if not self.backprop_ahead():
            return
        self.won += 1
        main.pbuf[:] = sh.pbuf
        main.diag[:] = sh.diag
        for i in _GUARD_IST:
            main.ist[i] = sh.ist[i]
        for i in _GUARD_FST:
            main.fst[i] = sh.fst[i]
        # the shadow's events during the race become the learner's
        for i, before in zip(_COUNTS, self.counts, strict=True):
            main.ist[i] += sh.ist[i] - before
        main.ist[lay.N_PHASE] = lay.M_BACKPROP
        main.ist[lay.N_SWITCHED_AT] = main.ist[lay.N_SEEN]

    def state(self) -> dict[str, Any]:
        """Races run and won by backprop, whether one runs, the last race's mean losses."""
        return {"races": self.races, "races_won_by_backprop": self.won,
                "racing": self.start >= 0,
                "last_race_losses": None if self.last is None else
                {"tween": self.last[0], "backprop": self.last[1]}}

    @staticmethod
    def idle() -> dict[str, Any]:
        """``state()`` of a learner that does not race.

        >>> Race.idle()["races"]
        0
        """
        return {"races": 0, "races_won_by_backprop": 0, "racing": False,
                "last_race_losses": None}

    # --- saving and loading ---------------------------------------------------------------
    BUFFERS = ("pbuf", "work", "diag", "fst", "ist")

    def arrays(self) -> dict[str, np.ndarray]:
        """The shadow's buffers while a race runs (``race_pbuf``, ...), else none."""
        if self.start < 0 or self.shadow is None:
            return {}
        return {f"race_{name}": getattr(self.shadow, name) for name in self.BUFFERS}

    def meta(self) -> dict[str, Any]:
        """The schedule and tallies, JSON-ready."""
        return {"races": self.races, "won": self.won, "last": self.last, "start": self.start,
                "marked": self.marked, "counts": self.counts, "block": self.block.tolist(),
                "paired": self.paired.tolist(), "sums": self.sums.tolist()}

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray], main: Arena,
                table: np.ndarray, ltab: np.ndarray, cfg: np.ndarray, icfg: np.ndarray) -> None:
        """Take the state of ``meta`` and ``arrays`` (``ValueError`` on a bad value)."""
        self.races, self.won = int(meta["races"]), int(meta["won"])
        last = meta["last"]
        self.last = None if last is None else (float(last[0]), float(last[1]))
        self.start, self.marked = int(meta["start"]), bool(meta["marked"])
        self.counts = [int(c) for c in meta["counts"]]
        self.paired[:] = meta["paired"]
        self.block[:] = meta["block"]
        self.sums[:] = meta["sums"]
        if self.races < 0 or not 0 <= self.won <= 1 or not np.isfinite(self.paired).all():
            raise ValueError("the race's tallies are out of range")
        if self.start < 0:
            return
        seen, half = int(main.ist[lay.N_SEEN]), self.start + self.length // 2
        opened = int(self.block[0])
        if not self.start <= seen <= self.start + self.length or len(self.counts) != 3 or (
                self.marked and not half <= opened <= seen <= opened + BLOCK) or (
                not self.marked and seen > half):
            raise ValueError(f"a race started at sample {self.start} cannot be running at "
                             f"sample {seen} (in its {'second' if self.marked else 'first'} "
                             "half)")
        if self.shadow is None:
            self.shadow = Arena(main.plan)
        for name in self.BUFFERS:
            buf, got = getattr(self.shadow, name), arrays.get(f"race_{name}")
            if got is None or got.shape != buf.shape or got.dtype != buf.dtype:
                raise ValueError(f"the race's array race_{name} is missing or does not match "
                                 f"the network")
            buf[...] = got
        sh = self.shadow
        if not np.isfinite(sh.pbuf).all() or sh.ist[lay.N_PHASE] != lay.M_BACKPROP:
            raise ValueError("the race's shadow copy is not a working backprop learner")
        self.args = (table, ltab, sh.pbuf, sh.work, sh.diag, cfg, icfg, sh.fst, sh.ist)
