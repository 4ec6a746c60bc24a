"""FeatureSlots: dict samples into a fixed-width vector, whatever keys come and go.

A numeric feature ``k: v`` (str or int key; int, float or bool value) writes ``v`` into the
slot of ``k``; a str value ``k: "red"`` writes 1.0 into the slot of the pair ``(k, "red")``
(a categorical indicator); ``None`` means missing. A key gets its slot when it first appears:
its home slot ``crc32(key) mod width`` if free, else the next free slot after it, so while
there is room every key has a slot of its own. Once every slot is taken, a new key shares its
home slot (the hashing trick) and its value adds to whatever is there.

The vector is float64 with NaN for a missing numeric feature (the scaling stage reads it as
the running mean, i.e. 0 once standardised); an indicator slot whose category is absent reads
0. Keys new in one sample get their slots in an order fixed by the keys themselves, so the key
order of a dict never changes a result. Slots are assigned only by ``commit``, after the whole
sample (or batch) was accepted.
"""

from __future__ import annotations

import array
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

_MEMO_LIMIT = 1 << 20  # overflow keys remembered for speed; beyond, hashed on every sample


def _tagged(key: Any) -> tuple[Any, ...]:
    """The key as a tuple of plain Python values, checked; ``TypeError`` if not hashable here."""
    if type(key) is tuple:  # (name, category)
        return (_tagged(key[0])[0], key[1])
    if isinstance(key, bool | np.bool_) or not isinstance(key, str | int | np.integer):
        raise TypeError(f"feature names must be str or int, found {type(key).__name__} {key!r}")
    return (key if type(key) in (str, int) else key.item(),)  # type: ignore[union-attr]


def _home(key: Any, width: int) -> int:
    """The key's home slot: CRC-32 of a tagged text form (stable across runs and machines)."""
    parts = key if type(key) is tuple else (key,)
    text = "\x1f".join(f"{type(p).__name__[0]}:{p}" for p in parts)
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) % width


class FeatureSlots:
    """The slot of every feature key a model has seen.

    Parameters
    ----------
    width : int
        Slots (the network's input width).

    Examples
    --------
    >>> fs = FeatureSlots(4)
    >>> raw = np.zeros(4)
    >>> new = fs.read({"temp": 21.5, "room": "kitchen", 3: 1}, raw); fs.commit(new)
    >>> len(fs.slots), float(np.nansum(raw))  # three slots of their own
    (3, 23.5)
    >>> _ = fs.read({"temp": 20.0}, raw); int(np.isnan(raw).sum())  # 3, and the free slot
    2
    """

    def __init__(self, width: int) -> None:
        self.width = int(width)
        self.slots: dict[Any, int] = {}  # key -> slot, for keys that own a slot
        self._shared: dict[Any, int] = {}  # key -> home slot, once every slot is taken
        self._taken = np.zeros(self.width, dtype=np.bool_)
        # NaN: missing numeric; 0: indicator. An array.array: copied into a buffer and item
        # by item faster than NumPy from Python (about 1 us per 10-feature dict, measured)
        self._blank = array.array("d", [np.nan]) * self.width

    # --- reading -----------------------------------------------------------------------------
    def read(self, x: Mapping[Any, Any], raw: Any, place: bool = True) -> list[Any]:
        """Write one dict sample into ``raw`` (float64 buffer of ``width``: a NumPy row or an
        ``array.array("d")``); return its new keys.

        With ``place``, the values of new keys go where ``commit`` will put the keys; without,
        they are left out (a model predicting ignores features it never learned from).

        Raises ``TypeError``/``ValueError`` naming the feature for a value that is not a
        finite real number, str or None, or a key that is not str or int. The slot table does
        not change; ``commit`` the returned keys once the sample is accepted.
        """
        raw[:] = self._blank
        slots = self.slots
        get = slots.get
        new: list[Any] = []
        for k, v in x.items():
            if type(v) is float and type(k) is str:  # the common case, in few steps
                s = get(k)
                if s is not None and v - v == 0.0:
                    raw[s] = v
                    continue
            tk = type(k)
            if tk is not str and tk is not int:  # True == 1 would find the slot of 1
                k = _tagged(k)[0]
            t = type(v)
            if t is float or t is int:
                if v - v:  # NaN or inf
                    raise ValueError(f"feature {k!r} = {v} is not finite; drop the feature (a "
                                     "missing feature is None or absent) or the sample")
            elif t is str:
                k = (k, v)
                v = 1.0
            elif v is None:
                continue
            elif isinstance(v, str):
                k = (k, str(v))
                v = 1.0
            else:
                v = _number(k, v)
            s = slots.get(k)
            if s is None:
                s = self._shared.get(k)
                if s is None:
                    new.append(k)
                    continue
                old = raw[s]
                raw[s] = v if old != old else old + v
                continue
            try:
                raw[s] = v
            except OverflowError:
                raise ValueError(f"feature {k!r} = {v} is beyond float64's range") from None
        if new and place:
            self._place(new, x, raw)
        return new

    def _place(self, new: list[Any], x: Mapping[Any, Any], raw: Any) -> None:
        """Write the values of keys without a slot yet, at the slots ``commit`` will give."""
        for k, s in self._assign(new):
            v = 1.0 if type(k) is tuple else _number(k, _value(x, k))
            old = raw[s]
            raw[s] = v if old != old else old + v

    def _assign(self, new: list[Any]) -> list[tuple[Any, int]]:
        """Slots for keys without one, in an order fixed by the keys (not by the dict)."""
        for k in new:
            _tagged(k)
        order = sorted(new, key=lambda k: (_home(k, 1 << 30), repr(k)))
        taken = self._taken.copy()
        out = []
        for k in order:
            s = home = _home(k, self.width)
            while taken[s]:
                s = (s + 1) % self.width
                if s == home:
                    break
            else:
                taken[s] = True
            out.append((k, s))
        return out

    def commit(self, new: list[Any]) -> None:
        """Give slots to the keys ``read`` found new (call once their sample was accepted)."""
        if not new:
            return
        for k, s in self._assign(new):
            if not self._taken[s]:
                self._take(k, s)
            elif len(self._shared) < _MEMO_LIMIT:
                self._shared[k] = s
        # an indicator slot reads 0 (category absent), a numeric one NaN (missing)

    def _take(self, k: Any, s: int) -> None:
        self.slots[k] = s
        self._taken[s] = True
        self._blank[s] = 0.0 if type(k) is tuple else np.nan

    def matrix(self, rows: Any, place: bool = True) -> np.ndarray:
        """Read a batch of dicts into a new (n, width) float64 matrix. With ``place``, new keys
        get their slots row by row (exactly as one ``read`` + ``commit`` per row); on a bad row
        the slot table is as before the call and the error names the row. A caller that refuses
        the batch later puts it back with ``restore(snapshot())`` taken before."""
        out = np.empty((len(rows), self.width))
        saved = self.snapshot() if place else None
        try:
            for i, row in enumerate(rows):
                if not isinstance(row, Mapping):
                    raise TypeError(f"expected a dict of features, found {type(row).__name__}")
                new = self.read(row, out[i], place)
                if place:
                    self.commit(new)
        except (TypeError, ValueError) as err:
            if saved is not None:
                self.restore(saved)
            raise type(err)(f"row {i}: {err}") from None
        return out

    def snapshot(self) -> tuple[Any, ...]:
        """The slot table as it is now, for ``restore``."""
        return (dict(self.slots), self._taken.copy(), array.array("d", self._blank),
                dict(self._shared))

    def restore(self, saved: tuple[Any, ...]) -> None:
        """Put back a ``snapshot``."""
        self.slots, self._taken, self._blank, self._shared = saved

    # --- files -------------------------------------------------------------------------------
    def to_list(self) -> list[list[Any]]:
        """JSON form: ``[[name, slot], ...]`` and ``[[name, category, slot], ...]``."""
        return [[*k, s] if type(k) is tuple else [k, s] for k, s in self.slots.items()]

    @classmethod
    def from_list(cls, items: Any, width: int) -> FeatureSlots:
        """Rebuild from ``to_list`` (or from a plain list of names: slots in order).

        Examples
        --------
        >>> FeatureSlots.from_list([["a", 1], ["c", "x", 0]], 2).slots
        {'a': 1, ('c', 'x'): 0}
        """
        out = cls(width)
        if not isinstance(items, list):
            raise ValueError("features must be a list")
        for j, item in enumerate(items):
            if isinstance(item, str | int) and not isinstance(item, bool):
                item = [item, j]  # an older file: names in slot order
            if (not isinstance(item, list) or len(item) not in (2, 3)
                    or isinstance(item[-1], bool) or not isinstance(item[-1], int)
                    or not 0 <= item[-1] < width):
                raise ValueError(f"feature entry {item!r} is not [name, slot] or "
                                 f"[name, category, slot] with a slot in [0, {width})")
            key = tuple(item[:2]) if len(item) == 3 else item[0]
            _tagged(key)
            if key in out.slots or out._taken[item[-1]]:
                raise ValueError(f"feature entry {item!r} repeats a name or a slot")
            out._take(key, item[-1])
        return out


def _number(k: Any, v: Any) -> float:
    """A feature value other than a plain int/float/str/None, as a float, or a clear error."""
    if isinstance(v, bool | np.bool_):
        return 1.0 if v else 0.0
    if isinstance(v, np.number) and not isinstance(v, np.complexfloating):
        f = float(v)
        if f - f:
            raise ValueError(f"feature {k!r} = {v} is not finite; drop the feature or sample")
        return f
    if type(v) is int or type(v) is float:
        try:
            return float(v)
        except OverflowError:
            raise ValueError(f"feature {k!r} = {v} is beyond float64's range") from None
    raise TypeError(f"feature {k!r} must be a real number, a str (a category) or None "
                    f"(missing), found {type(v).__name__}")


def _value(x: Mapping[Any, Any], k: Any) -> Any:
    """The value of key ``k`` in ``x``, where ``k`` may be the plain form of a NumPy int key."""
    if k in x:
        return x[k]
    for key, v in x.items():
        if key == k:
            return v
    raise KeyError(k)
