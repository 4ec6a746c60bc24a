"""The wire protocol (version 1): a msgpack header frame, then raw little-endian array frames.

Frames of one message::

    [header]            msgpack map, at most ``Limits.max_header_bytes``
    [X]                 n x d float32, little-endian, C order      (not for ``label``)
    [Y]                 n int64 labels or n x k float32 targets    (``learn``, ``learn_predict``,
                                                                    ``label``)

Header keys: ``v`` (1), ``kind``, ``seq`` (int >= 0, per stream), ``stream`` (str), ``dtype`` and
``shape`` of X, ``y_dtype`` and ``y_shape`` of Y, and ``ids`` (one id per row: int or str) for a
``predict`` whose labels come later in a ``label`` message; optionally ``model``, the name of
the model a message is for (a daemon serving several models routes by ``stream`` otherwise).
Array bytes never pass through
msgpack: the decoder returns zero-copy views of the frames. ``decode`` checks everything against
the model's contract and hard limits before anything is learned, and raises ``ProtocolError``
with one of ``REASONS``. See docs/protocol.md for the full rules and a worked example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgpack
import numpy as np

from tweenstream.errors import CodedError

VERSION = 1
KINDS = ("learn", "predict", "learn_predict", "label")
X_DTYPE = "<f4"
LABEL_DTYPE = "<i8"
TARGET_DTYPE = "<f4"
REASONS = ("truncated", "garbage", "wrong_dtype", "wrong_shape", "nan", "oversized",
           "unknown_version", "unknown_kind", "bad_header", "bad_label", "bad_value",
           "seq_jump", "too_many_streams", "no_model")
MAX_SEQ = (1 << 63) - 1  # a seq must fit the int64 of a checkpoint
_FRAMES = {"learn": 3, "predict": 2, "learn_predict": 3, "label": 2}
_ITEMSIZE = {X_DTYPE: 4, LABEL_DTYPE: 8}  # TARGET_DTYPE is X_DTYPE
# what msgpack raises on bad bytes (its own errors subclass ValueError; TypeError for an
# unhashable map key; OverflowError for huge ints)
_MSGPACK_ERRORS = (ValueError, TypeError, OverflowError)


class ProtocolError(CodedError):
    """A message that breaks the protocol; ``code`` is one of ``REASONS``."""


@dataclass(frozen=True)
class Limits:
    """Hard limits checked before any array is looked at."""

    max_header_bytes: int = 4096
    max_rows: int = 65_536
    max_bytes: int = 64 << 20
    max_name: int = 64


@dataclass(frozen=True)
class Contract:
    """What a model accepts: inputs per row, outputs per row, its task, and whether it is an
    autoencoder (``reconstruct``: its learn messages carry no Y, its predictions are anomaly
    scores)."""

    n_inputs: int
    n_outputs: int
    classification: bool
    reconstruct: bool = False

    @property
    def y_dtype(self) -> str:
        return LABEL_DTYPE if self.classification else TARGET_DTYPE

    def y_shape(self, n: int) -> list[int]:
        return [n] if self.classification else [n, self.n_outputs]


class Header(NamedTuple):
    """A message's checked header (``read_header``): what routing needs before the arrays."""

    fields: dict[str, Any]
    kind: str
    seq: int | None
    stream: str
    size: int  # bytes of the header frame

    @property
    def model(self) -> str | None:
        """The model the sender named, if any (checked: a str of 1..64 chars)."""
        return self.fields.get("model")


class Message(NamedTuple):
    """A decoded message: read-only views of its frames, never copies. (A named tuple: one is
    built per message, and a frozen dataclass costs several times more to build.)"""

    kind: str
    seq: int | None
    stream: str
    X: np.ndarray | None
    Y: np.ndarray | None
    ids: tuple[Any, ...] | None
    rows: int = 0


def encode(kind: str, X: Any = None, Y: Any = None, *, seq: int | None = None,
           stream: str = "default", ids: Sequence[Any] | None = None,
           model: str | None = None) -> list[bytes]:
    """Frames of one message. ``Y`` int for labels, float for regression targets, None for an
    autoencoder's ``learn`` (or ``learn_predict``): the message then has no Y frame.

    Examples
    --------
    >>> frames = encode("learn", np.zeros((2, 3), np.float32), np.array([0, 1]), seq=7)
    >>> [len(f) for f in frames[1:]]
    [24, 16]
    >>> decode(frames, Contract(3, 2, True)).seq
    7
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, found {kind!r}")
    header: dict[str, Any] = {"v": VERSION, "kind": kind, "stream": stream}
    if seq is not None:
        header["seq"] = int(seq)
    if model is not None:
        header["model"] = model
    frames: list[bytes] = []
    if kind != "label":
        x = np.ascontiguousarray(X, dtype=X_DTYPE)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        header["dtype"], header["shape"] = X_DTYPE, list(x.shape)
        frames.append(x.tobytes())
    if kind in ("learn", "learn_predict", "label") and (Y is not None or kind == "label"):
        y = np.asarray(Y)
        y = np.ascontiguousarray(y, dtype=LABEL_DTYPE if y.dtype.kind in "iub" else TARGET_DTYPE)
        header["y_dtype"], header["y_shape"] = y.dtype.str, list(y.shape)
        frames.append(y.tobytes())
    if ids is not None:
        header["ids"] = list(ids)
    return [msgpack.packb(header), *frames]


def decode(frames: Sequence[Any], contract: Contract, limits: Limits = Limits()) -> Message:
    """Validate and decode one message; raises ``ProtocolError`` with a reason code.

    ``frames`` are bytes or buffers (e.g. zmq frames' ``buffer``). Nothing is copied. This is
    ``decode_frames`` (everything but the values) followed by ``check_values``.
    """
    msg = decode_frames(frames, contract, limits)
    check_values(msg.X, msg.Y, contract)
    return msg


def check_values(X: np.ndarray | None, Y: np.ndarray | None, contract: Contract) -> None:
    """The checks on array values ``decode_frames`` leaves out: X finite, labels in range,
    targets finite. One call can cover many messages' rows at once (the daemon's batches)."""
    if X is not None and not np.isfinite(X).all():
        raise ProtocolError("nan", "X holds NaN or inf")
    if Y is not None:
        if contract.classification:
            if len(Y) and (Y.min() < 0 or Y.max() >= contract.n_outputs):
                raise ProtocolError("bad_label", f"labels must be in [0, {contract.n_outputs})")
        elif not np.isfinite(Y).all():
            raise ProtocolError("nan", "Y holds NaN or inf")


def decode_frames(frames: Sequence[Any], contract: Contract,
                  limits: Limits = Limits()) -> Message:
    """``decode`` without looking at array values: the header, frame counts, sizes, dtypes and
    shapes are checked; finiteness and label ranges are left to ``check_values``. No NumPy
    reduction runs here, so a one-row message decodes in a few microseconds.

    Examples
    --------
    >>> frames = encode("learn", [[1.0, float("nan")]], [0], seq=1)
    >>> decode_frames(frames, Contract(2, 2, True)).rows  # the NaN is for check_values
    1
    """
    return decode_body(read_header(frames, limits), frames, contract, limits)


def read_header(frames: Sequence[Any], limits: Limits = Limits()) -> Header:
    """The first half of ``decode_frames``: the header's size, msgpack, version, kind, frame
    count, seq, stream and model, checked without looking at the array frames.

    Examples
    --------
    >>> read_header(encode("learn", [[1.0]], [0], seq=3, stream="s1", model="m")).model
    'm'
    """
    if len(frames) == 0:
        raise ProtocolError("truncated", "empty message")
    raw_header = frames[0]
    size = len(raw_header) if isinstance(raw_header, bytes) else memoryview(raw_header).nbytes
    if size > limits.max_header_bytes:
        raise ProtocolError("oversized", f"header is {size} bytes, limit "
                            f"{limits.max_header_bytes}")
    try:
        header = msgpack.unpackb(raw_header, raw=False, strict_map_key=True)
    except _MSGPACK_ERRORS as err:
        raise ProtocolError("garbage", f"header is not msgpack ({type(err).__name__})") from None
    if type(header) is not dict:
        raise ProtocolError("garbage", "header is not a msgpack map")
    version = header.get("v")
    if type(version) is not int or version != VERSION:  # True and 1.0 are not the int 1
        raise ProtocolError("unknown_version", f"protocol version {version!r}; this daemon "
                            f"speaks {VERSION}")
    kind = header.get("kind")
    want = _FRAMES.get(kind) if type(kind) is str else None
    if want is None or kind is None:
        raise ProtocolError("unknown_kind", f"kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind in ("learn", "learn_predict") and "y_dtype" not in header:
        want -= 1  # unlabelled: for an autoencoder (decode_body checks the model is one)
    if len(frames) < want:
        raise ProtocolError("truncated", f"{kind} needs {want} frames, found {len(frames)}")
    if len(frames) > want:
        raise ProtocolError("garbage", f"{kind} has {want} frames, found {len(frames)}")
    seq = header.get("seq")
    if seq is not None and (type(seq) is not int or not 0 <= seq <= MAX_SEQ):
        raise ProtocolError("bad_header", f"seq must be an int in [0, 2**63), found {seq!r}")
    if kind != "predict" and seq is None:
        raise ProtocolError("bad_header", f"a {kind} message needs a seq")
    stream = header.get("stream", "default")
    if type(stream) is not str or not 0 < len(stream) <= limits.max_name or "\0" in stream:
        raise ProtocolError("bad_header", f"stream must be a str of 1..{limits.max_name} chars, "
                            "without NUL")
    model = header.get("model")
    if model is not None and (type(model) is not str or not 0 < len(model) <= 64):
        raise ProtocolError("bad_header", "model must be a str of 1..64 chars")
    return Header(header, kind, seq, stream, size)


def decode_body(head: Header, frames: Sequence[Any], contract: Contract,
                limits: Limits = Limits()) -> Message:
    """The second half of ``decode_frames``: the array frames of a message whose header
    ``read_header`` checked, against ``contract`` (the model it is routed to)."""
    header, kind, stream, size = head.fields, head.kind, head.stream, head.size
    X = Y = None
    rows = None
    total = size
    nxt = 1
    if kind != "label":
        X = _array(header, "dtype", "shape", frames[nxt], X_DTYPE, limits)
        if X.ndim != 2 or X.shape[1] != contract.n_inputs:
            raise ProtocolError("wrong_shape", f"X shape {list(X.shape)}; this model takes "
                                f"[n, {contract.n_inputs}]")
        rows = X.shape[0]
        total += X.nbytes
        nxt += 1
    unlabelled = kind in ("learn", "learn_predict") and "y_dtype" not in header
    if unlabelled and not contract.reconstruct:
        raise ProtocolError("bad_header", f"a {kind} message needs Y (y_dtype, y_shape and "
                            "its frame): only an autoencoder learns without")
    if contract.reconstruct and kind in ("learn", "learn_predict", "label") and not unlabelled:
        raise ProtocolError("bad_header", "this model is an autoencoder: it learns to "
                            "reproduce X, so its learn messages carry no Y (and no label "
                            "messages)")
    if kind in ("learn", "learn_predict", "label") and not unlabelled:
        Y = _array(header, "y_dtype", "y_shape", frames[nxt], contract.y_dtype, limits)
        n = Y.shape[0] if rows is None else rows
        if Y.ndim != (1 if contract.classification else 2) or Y.shape[0] != n or (
                not contract.classification and Y.shape[1] != contract.n_outputs):
            raise ProtocolError("wrong_shape", f"Y shape {list(Y.shape)}; expected "
                                f"{contract.y_shape(n)}")
        rows = n
        total += Y.nbytes
    if total > limits.max_bytes:
        raise ProtocolError("oversized", f"message is {total} bytes, limit {limits.max_bytes}")
    ids = _ids(header, kind, rows or 0, limits)
    return Message(kind, head.seq, stream, X, Y, ids, rows or 0)


def _array(header: dict[str, Any], dkey: str, skey: str, frame: Any, dtype: str,
           limits: Limits) -> np.ndarray:
    found = header.get(dkey)
    if found != dtype:
        raise ProtocolError("wrong_dtype", f"{dkey} must be {dtype!r}, found {found!r}")
    shape = header.get(skey)
    if (type(shape) is not list or not 1 <= len(shape) <= 2
            or type(shape[0]) is not int or shape[0] < 1
            or (len(shape) == 2 and (type(shape[1]) is not int or shape[1] < 1))):
        raise ProtocolError("wrong_shape", f"{skey} must be a list of 1 or 2 positive ints, "
                            f"found {shape!r}")
    if shape[0] > limits.max_rows:
        raise ProtocolError("oversized", f"{shape[0]} rows, limit {limits.max_rows}")
    expected = _ITEMSIZE[dtype]  # Python ints: never overflows
    for d in shape:
        expected *= d
    if expected > limits.max_bytes:
        raise ProtocolError("oversized", f"{skey} {shape} needs {expected} bytes, limit "
                            f"{limits.max_bytes}")
    nbytes = len(frame) if isinstance(frame, bytes) else memoryview(frame).nbytes
    if nbytes < expected:
        raise ProtocolError("truncated", f"{skey} {shape} needs {expected} bytes, frame has "
                            f"{nbytes}")
    if nbytes > expected:
        raise ProtocolError("garbage", f"{skey} {shape} needs {expected} bytes, frame has "
                            f"{nbytes}")
    return np.frombuffer(frame, dtype=dtype).reshape(shape)


def _ids(header: dict[str, Any], kind: str, rows: int, limits: Limits) -> tuple[Any, ...] | None:
    ids = header.get("ids")
    if ids is None:
        if kind == "label":
            raise ProtocolError("bad_header", "a label message needs ids")
        return None
    if kind not in ("predict", "label"):
        raise ProtocolError("bad_header", f"ids belong on predict or label, not {kind}")
    if not isinstance(ids, list) or len(ids) != rows:
        raise ProtocolError("bad_header", f"ids must be a list of {rows} ids")
    for i in ids:
        ok_int = type(i) is int and -MAX_SEQ - 1 <= i <= MAX_SEQ  # checkpoints keep int64
        ok_str = isinstance(i, str) and 0 < len(i) <= limits.max_name and "\0" not in i
        if not (ok_int or ok_str):
            raise ProtocolError("bad_header", f"an id must be an int64 or a short str, found {i!r}")
    return tuple(ids)


def pack(obj: dict[str, Any]) -> bytes:
    """A control message or reply: one msgpack map.

    Examples
    --------
    >>> unpack(pack({"cmd": "status"}))
    {'cmd': 'status'}
    """
    return msgpack.packb(obj)


def unpack(data: Any, max_bytes: int = 65_536) -> dict[str, Any]:
    """Decode a control message; raises ``ProtocolError`` unless it is a small msgpack map."""
    view = memoryview(data)
    if view.nbytes > max_bytes:
        raise ProtocolError("oversized", f"control message is {view.nbytes} bytes")
    try:
        obj = msgpack.unpackb(view, raw=False)
    except _MSGPACK_ERRORS as err:
        raise ProtocolError("garbage", f"not msgpack ({type(err).__name__})") from None
    if not isinstance(obj, dict):
        raise ProtocolError("garbage", "a control message is a msgpack map")
    return obj


def split_envelope(frames: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Split a ROUTER message into (routing envelope, body); REQ peers add an empty frame.

    Examples
    --------
    >>> split_envelope([b"id", b"", b"body"])
    ([b'id', b''], [b'body'])
    >>> split_envelope([b"id", b"body"])
    ([b'id'], [b'body'])
    """
    cut = 2 if len(frames) > 2 and bytes(frames[1]) == b"" else 1
    return list(frames[:cut]), list(frames[cut:])


def prediction_reply(out: np.ndarray) -> list[bytes]:
    """The two reply frames of a prediction: header map, raw float32 (n, k)."""
    data = np.ascontiguousarray(out, dtype=X_DTYPE)
    header = {"ok": True, "code": "ok", "kind": "prediction", "dtype": X_DTYPE,
              "shape": list(data.shape)}
    return [pack(header), data.tobytes()]


def error_reply(code: str, reason: str) -> list[bytes]:
    """The one reply frame of a failure."""
    return [pack({"ok": False, "code": code, "reason": reason})]
