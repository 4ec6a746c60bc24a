"""InputStage: from what a user hands a Learner (arrays or dicts) to the float32 rows its
network reads, through the model's own preprocessing (slots for dict keys, standardisation).

Buffers are allocated once; a batch is scaled in chunks of at most ``CHUNK`` rows into them.
"""

from __future__ import annotations

import array
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tweenstream.models.network import Network
from tweenstream.models.registry import kind_of
from tweenstream.runtime.features import FeatureSlots
from tweenstream.runtime.inputs import FeatureMap, target, targets
from tweenstream.runtime.scaling import Scaler

CHUNK = 256


def scaling_on(network: Network, scaling: str) -> bool:
    """Whether a network scales its input: ``"auto"`` does for flat real-valued input (not
    for images, sequences or token ids), ``"online"`` always, ``"off"`` never.

    Examples
    --------
    >>> from tweenstream import Dense, Network
    >>> scaling_on(Network(3, [Dense(2)]), "auto"), scaling_on(Network(3, [Dense(2)]), "off")
    (True, False)
    """
    tokens = kind_of(network.layers[0]).name == "embedding"
    if scaling == "online" and tokens:
        raise ValueError("scaling='online' standardises real-valued inputs, but this network "
                         "reads token ids (Embedding first); use scaling='off' or 'auto'")
    if scaling == "auto":
        return len(network.input_shape) == 1 and not tokens
    return scaling == "online"


def is_dicts(X: Any) -> bool:
    """True for a non-empty sequence whose first item is a dict (a batch of dict samples)."""
    return isinstance(X, Sequence) and len(X) > 0 and isinstance(X[0], Mapping)


class InputStage:
    """The input side of one learner.

    Examples
    --------
    >>> from tweenstream import Dense, Network
    >>> stage = InputStage(Network(2, [Dense(2)]), scale=True, clip=8.0, freeze_after=None)
    >>> z = stage.one({"a": 1.0, "b": 5.0}, learn=True); stage.commit()
    >>> z = stage.one({"b": 7.0, "a": 3.0}, learn=True); stage.commit()
    >>> stage.one({"a": 5.0, "b": 9.0}, learn=False).tolist()  # mean 2 and 6, std 1
    [[3.0, 3.0]]
    """

    def __init__(self, network: Network, scale: bool, clip: float | None,
                 freeze_after: int | None) -> None:
        d = network.n_inputs
        self.arrays = FeatureMap(d)
        self.slots = FeatureSlots(d)
        self.scaler = Scaler(d, clip, freeze_after) if scale else None
        self._buf1 = array.array("d", bytes(8 * d))  # the fast buffer of FeatureSlots.read
        self._raw1 = np.frombuffer(self._buf1, dtype=np.float64).reshape(1, d)
        self._z1 = np.zeros((1, d), dtype=np.float32)
        rows = max(1, min(CHUNK, (1 << 16) // max(d, 1)))
        self._raw = np.zeros((rows, d), dtype=np.float64)
        self._z = np.zeros((rows, d), dtype=np.float32)
        self.raw: np.ndarray = self._raw1  # the last sample before scaling, (1, d)
        self._new: list[Any] = []
        self._saved: tuple[Any, ...] | None = None
        self._stage = self.scaler or Scaler(0, None, None)  # when off, it only casts

    # --- one sample --------------------------------------------------------------------------
    def one(self, x: Any, learn: bool) -> np.ndarray:
        """The (1, d) float32 network input of one sample; learning updates the statistics.

        A dict's keys without a slot are taken (``commit``) only when learning; when
        predicting they are ignored, as features the model never learned from.
        """
        if isinstance(x, Mapping):
            new = self.slots.read(x, self._buf1, place=learn)
            self._new = new if learn else []
            self.raw = self._raw1
            return self._scale(self._raw1, self._z1, learn, True, "x")
        xv = self.arrays.vector(x, exact=self.scaler is not None).reshape(1, -1)
        self.raw = xv
        if self.scaler is None:
            return xv
        self._raw1[0] = xv[0]  # float64 ones keep their precision for the statistics
        return self._scale(self._raw1, self._z1, learn, False, "x")

    def warm(self) -> None:
        """Compile (or load) the stage's kernels without scaling anything."""
        self._stage.apply(self._raw1[:0], self._z1[:0], False, scale=self.scaler is not None)

    def commit(self) -> None:
        """Give slots to the dict keys of the last accepted sample or batch."""
        if self._new:
            self.slots.commit(self._new)
            self._new = []
        self._saved = None

    def rollback(self) -> None:
        """Forget the slots a refused batch would have given."""
        if self._saved is not None:
            self.slots.restore(self._saved)
        self._saved = None
        self._new = []

    def _scale(self, raw: np.ndarray, out: np.ndarray, learn: bool, missing_ok: bool,
               what: str, start: int = 0) -> np.ndarray:
        bad = self._stage.apply(raw, out, learn, missing_ok, scale=self.scaler is not None)
        if bad >= 0:
            self._new = []
            if not learn:
                raise ValueError(f"rows [{bad + start}] of X have NaN or inf (or values beyond "
                                 "float32's range); clean them before predicting")
            raise ValueError(f"{what} has NaN or inf (or a value beyond float32's range, about "
                             "3.4e38); nothing was learned. Clean or drop the sample")
        return out

    # --- batches -----------------------------------------------------------------------------
    def batch(self, X: Any, learn: bool) -> tuple[np.ndarray, bool]:
        """Validate a batch: (rows, is_dicts). Dict rows become a float64 matrix with NaN for
        missing values (their new keys pending a ``commit``); arrays are checked and returned
        as float32, or as given when a scaling stage reads them (in float64). Nothing is
        scaled yet (``chunks`` does that)."""
        if is_dicts(X):
            self._saved = self.slots.snapshot() if learn else None
            raw = self.slots.matrix(X, place=learn)
            if not learn:
                self._saved = None
            if self.scaler is None:
                big = np.abs(raw) > 3.4028234663852886e38
                if big.any():
                    self.rollback()
                    raise ValueError(f"row {int(np.argwhere(big)[0][0])}: a feature is beyond "
                                     "float32's range (about 3.4e38); nothing was learned")
            return raw, True
        return self.arrays.matrix(X, exact=self.scaler is not None), False

    @property
    def chunk_rows(self) -> int:
        """Rows per chunk of a scaled batch."""
        return int(self._raw.shape[0])

    def passthrough(self, dicts: bool) -> bool:
        """True when array rows go to the network as they are (no stage)."""
        return self.scaler is None and not dicts

    def chunks(self, rows: np.ndarray, dicts: bool, learn: bool
               ) -> Iterator[tuple[int, np.ndarray]]:
        """(start, float32 network input) for consecutive chunks of a validated batch."""
        n, size = rows.shape[0], self._raw.shape[0]
        for start in range(0, n, size):
            stop = min(start + size, n)
            src = rows[start:stop]
            if not dicts:
                self._raw[:stop - start] = src
                src = self._raw[:stop - start]
            yield start, self._scale(src, self._z[:stop - start], learn, dicts, "X", start)

    def network_inputs(self, X: np.ndarray) -> np.ndarray:
        """The float32 network rows for raw rows ``X`` (n, d) as the replay reservoir keeps
        them (NaN = missing), scaled with the current statistics (allocates)."""
        if self.scaler is None:
            return np.nan_to_num(np.ascontiguousarray(X, dtype=np.float32), nan=0.0)
        return self.matrix(np.asarray(X), dicts=True)

    def matrix(self, rows: np.ndarray, dicts: bool) -> np.ndarray:
        """The whole float32 network input of a validated batch, for prediction (allocates)."""
        if self.passthrough(dicts):
            return rows
        out = np.empty((rows.shape[0], rows.shape[1]), dtype=np.float32)
        for start, z in self.chunks(rows, dicts, learn=False):
            out[start:start + z.shape[0]] = z
        return out


class TargetStage:
    """The target side of a regression learner: targets standardised online (``scaler``), or
    as given (``scaler`` None). The engine's target rows are (n, 4K) when standardised: the
    scaled target, the target, and the std and mean that scaled it (``scaling.scale_targets``).

    Examples
    --------
    >>> stage = TargetStage(1, Scaler(1, 8.0, None))
    >>> for y in (10.0, 20.0, 30.0):
    ...     stage.one(y); stage.learn()
    >>> stage.row.tolist()  # 30 scaled with the mean 15 and std 5 of 10 and 20
    [[3.0, 30.0, 5.0, 15.0]]
    >>> round(float(stage.outputs(np.array([[1.0]], np.float32))[0, 0]), 3)  # 1 sd above 20
    28.165
    """

    def __init__(self, k: int, scaler: Scaler | None) -> None:
        self.k = k
        self.scaler = scaler
        self.row = np.zeros((1, 4 * k if scaler else k), dtype=np.float32)  # the engine's
        self._y64 = np.zeros((1, k), dtype=np.float64)

    def one(self, y: Any) -> None:
        """Check one target into ``row`` (or, standardised, into a buffer ``learn`` scales);
        ``ValueError`` for NaN or inf."""
        if self.scaler is None:
            self.row[0] = target(y, self.k)[0]
            return
        t = self._y64
        if type(y) is float and self.k == 1:  # the common case, without NumPy calls
            t[0, 0] = y
            finite = y - y == 0.0
        else:
            t[0] = target(y, self.k, np.float64)[0]
            finite = bool(np.isfinite(t).all())
        if not finite:
            raise ValueError("y has NaN or inf; nothing was learned. Clean or drop the sample")

    def learn(self) -> None:
        """Scale the target of ``one`` into ``row`` and count it (after x was accepted)."""
        if self.scaler is not None:
            self.scaler.targets(self._y64, self.row, learn=True)

    def batch(self, Y: Any, n: int) -> np.ndarray:
        """The engine's rows for a batch, counting the targets in the statistics: call it once
        nothing else can refuse the batch. ``ValueError`` names the first non-finite row."""
        if self.scaler is None:
            return targets(Y, n, self.k)
        T = targets(Y, n, self.k, np.float64)
        ok = np.isfinite(T).all(axis=1)
        if not ok.all():
            raise ValueError(f"row {int(np.argmin(ok))}: y has NaN or inf; nothing was "
                             "learned. Fix or drop that row")
        out = np.empty((n, 4 * self.k), dtype=np.float32)
        self.scaler.targets(T, out, learn=True)
        return out

    def given(self, rows: np.ndarray) -> np.ndarray:
        """The targets as given, from the engine's rows."""
        return rows if self.scaler is None else rows[:, self.k:2 * self.k]

    def network(self, Y: np.ndarray) -> np.ndarray:
        """The engine's rows for targets ``Y`` (n, K), scaled with the current statistics."""
        T = np.ascontiguousarray(np.asarray(Y, np.float64).reshape(len(Y), -1))
        if self.scaler is None:
            return T.astype(np.float32)
        out = np.empty((T.shape[0], 4 * T.shape[1]), dtype=np.float32)
        self.scaler.targets(T, out, learn=False)
        return out

    def outputs(self, out: np.ndarray) -> np.ndarray:
        """Network outputs (n, K) in the targets' units (in place)."""
        return out if self.scaler is None else self.scaler.unscale(out)

    def warm(self) -> None:
        """Compile (or load) the kernel without scaling anything."""
        if self.scaler is not None:
            self.scaler.targets(self._y64[:0], np.zeros((0, 4 * self.k), np.float32), False)
