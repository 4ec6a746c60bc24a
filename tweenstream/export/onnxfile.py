"""What an ONNX file holds, read straight from its protobuf bytes: no ``onnx`` package needed.

The edge predictor checks a model before serving it: its metadata, its opsets, its input and
output names, and its weights (their SHA-256 and their finiteness). Those need only a few fields
of ``ModelProto``, so they are read here from the wire format itself (varints and
length-delimited fields, as the protobuf encoding defines them), and the edge never imports
``onnx`` (whose import alone takes over a second). Everything else in the file (the nodes) is
skipped by length and left to onnxruntime, which builds and checks the graph.

Repeated reads of a singular message field merge, as protobuf defines it; malformed bytes raise
``FormatError("corrupt")``, never another exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tweenstream.errors import CodedError


class FormatError(CodedError):
    """A model file that is not a valid tweenstream export; ``code`` names the check."""


# TensorProto.DataType -> numpy dtype (types with a fixed size in raw_data)
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"), 2: np.dtype("u1"), 3: np.dtype("i1"), 4: np.dtype("<u2"),
    5: np.dtype("<i2"), 6: np.dtype("<i4"), 7: np.dtype("<i8"), 9: np.dtype("?"),
    10: np.dtype("<f2"), 11: np.dtype("<f8"), 12: np.dtype("<u4"), 13: np.dtype("<u8"),
    14: np.dtype("<c8"), 15: np.dtype("<c16"), 16: np.dtype("<u2"),  # 16: bfloat16 bits
}
BFLOAT16 = 16
# where a tensor of each type keeps its values when it has no raw_data (TensorProto fields)
_TYPED_FIELD = {1: 4, 14: 4, 2: 5, 3: 5, 4: 5, 5: 5, 6: 5, 9: 5, 10: 5, 16: 5, 7: 7, 11: 10,
                15: 10, 12: 11, 13: 11}
_PACKED = {4: ("<f", 4), 5: None, 7: None, 10: ("<d", 8), 11: None}  # None: varints


@dataclass
class Tensor:
    """One initializer: its name, element type, dims and values (little-endian)."""

    name: str
    data_type: int
    dims: tuple[int, ...]
    values: np.ndarray

    def finite(self) -> bool:
        """False if a floating-point value is NaN or inf."""
        v = self.values
        if self.data_type == BFLOAT16:
            v = (v.astype(np.uint32) << 16).view(np.float32)
        return v.dtype.kind not in "fc" or bool(np.isfinite(v).all())


@dataclass
class ModelFile:
    """The fields of an ONNX model the edge checks.

    Examples
    --------
    >>> ModelFile.parse(b"").ir_version
    0
    >>> ModelFile.parse(b"\\x08\\x08").ir_version  # field 1 (ir_version), varint 8
    8
    """

    ir_version: int = 0
    opsets: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    initializers: list[Tensor] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> ModelFile:
        """Read ``data`` (a serialized ``ModelProto``); ``FormatError`` if it is malformed."""
        try:
            return _model(memoryview(data))
        except _Malformed as err:
            raise FormatError("corrupt", f"not an ONNX model ({err})") from None


class _Malformed(Exception):
    pass


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    end = min(pos + 10, len(buf))
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
    raise _Malformed("truncated or overlong varint")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) for each field: an int, or a memoryview of the bytes."""
    pos, n = 0, len(buf)
    value: int | memoryview
    while pos < n:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if size > n - pos:
                raise _Malformed("a field runs past the end")
            value, pos = buf[pos:pos + size], pos + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > n:
                raise _Malformed("a field runs past the end")
            value, pos = buf[pos:pos + width], pos + width
        else:
            raise _Malformed(f"wire type {wire}")
        yield number, wire, value


def _text(value: int | memoryview) -> str:
    if isinstance(value, int):
        raise _Malformed("a string field holds a number")
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed("a string is not UTF-8") from None


def _int(value: int | memoryview, signed: bool = True) -> int:
    if not isinstance(value, int):
        raise _Malformed("a number field holds bytes")
    return value - (1 << 64) if signed and value >= 1 << 63 else value


def _model(buf: memoryview) -> ModelFile:
    out = ModelFile()
    graphs: list[bytes] = []
    for number, _, value in _fields(buf):
        if number == 1:
            out.ir_version = _int(value)
        elif number == 8:  # OperatorSetIdProto: domain, version
            domain, version = _pair(value, _int, 0)
            out.opsets[domain] = version
        elif number == 14:  # StringStringEntryProto: key, value
            key, text = _pair(value, _text, "")
            out.metadata[key] = text
        elif number == 7:
            graphs.append(bytes(_bytes(value)))
    _graph(memoryview(b"".join(graphs)), out)  # repeated singular messages merge
    return out


def _pair(value: int | memoryview, second: Callable[[Any], Any], default: Any
          ) -> tuple[str, Any]:
    """Fields 1 (a string) and 2 (read by ``second``) of a small message."""
    first, other = "", default
    for number, _, v in _fields(_bytes(value)):
        if number == 1:
            first = _text(v)
        elif number == 2:
            other = second(v)
    return first, other


def _bytes(value: int | memoryview) -> memoryview:
    if isinstance(value, int):
        raise _Malformed("a message field holds a number")
    return value


def _graph(buf: memoryview, out: ModelFile) -> None:
    for number, _, value in _fields(buf):
        if number == 5:
            out.initializers.append(_tensor(_bytes(value)))
        elif number in (11, 12):
            name = ""
            for n2, _, v2 in _fields(_bytes(value)):
                if n2 == 1:
                    name = _text(v2)
            (out.inputs if number == 11 else out.outputs).append(name)
        elif number == 15:
            raise _Malformed("sparse initializers are not supported")


def _tensor(buf: memoryview) -> Tensor:
    name, data_type, dims, raw = "", 0, [], None
    typed: dict[int, list] = {}
    for number, wire, value in _fields(buf):
        if number == 1:
            dims.extend(_repeated_ints(wire, value))
        elif number == 2:
            data_type = _int(value)
        elif number == 8:
            name = _text(value)
        elif number == 9:
            raw = bytes(_bytes(value))
        elif number in _PACKED:
            typed.setdefault(number, []).append((wire, value))
        elif number in (13, 14) and (number == 13 or _int(value) != 0):
            raise _Malformed(f"initializer {name!r} keeps its data outside the file")
        elif number == 6:
            raise _Malformed(f"initializer {name!r} holds strings")
    if data_type not in DTYPES:
        raise _Malformed(f"initializer {name!r} has data type {data_type}")
    if any(d < 0 for d in dims):
        raise _Malformed(f"initializer {name!r} has a negative dimension")
    size = int(np.prod(dims, dtype=np.int64)) if dims else 1
    dtype = DTYPES[data_type]
    if raw is not None:
        if len(raw) != size * dtype.itemsize:
            raise _Malformed(f"initializer {name!r} holds {len(raw)} bytes, its dims need "
                             f"{size * dtype.itemsize}")
        values = np.frombuffer(raw, dtype=dtype)
    else:
        values = _typed_values(typed.get(_TYPED_FIELD[data_type], []), data_type, dtype)
        if values.size != size:
            raise _Malformed(f"initializer {name!r} holds {values.size} values, its dims "
                             f"need {size}")
    return Tensor(name, data_type, tuple(dims), values)


def _repeated_ints(wire: int, value: int | memoryview, signed: bool = True) -> list[int]:
    """A repeated integer field, unpacked (one varint) or packed (length-delimited)."""
    if wire == 0:
        return [_int(value, signed)]
    if wire != 2:
        raise _Malformed("an integer field has a fixed-width value")
    out, pos, buf = [], 0, _bytes(value)
    while pos < len(buf):
        v, pos = _varint(buf, pos)
        out.append(v - (1 << 64) if signed and v >= 1 << 63 else v)
    return out


def _typed_values(chunks: list, data_type: int, dtype: np.dtype) -> np.ndarray:
    """Values kept in float_data, int32_data, int64_data, double_data or uint64_data."""
    number = _TYPED_FIELD[data_type]
    fixed = _PACKED[number]
    parts: list[np.ndarray] = []
    for wire, value in chunks:
        if fixed is not None:  # packed (wire 2) or one fixed-width value (wire 1 or 5)
            code, width = fixed
            data = bytes(_bytes(value))
            if len(data) % width or (wire != 2 and len(data) != width):
                raise _Malformed("a float field has a partial or mistyped value")
            parts.append(np.frombuffer(data, dtype=code))
        else:
            unsigned = number == 11
            parts.append(np.array(_repeated_ints(wire, value, not unsigned),
                                  dtype=np.uint64 if unsigned else np.int64))
    flat = np.concatenate(parts) if parts else np.zeros(0, np.float64)
    if data_type in (14, 15):  # complex: pairs of real and imaginary parts
        flat = flat.astype(np.float32 if data_type == 14 else np.float64)
        if flat.size % 2:
            raise _Malformed("a complex tensor has an odd count of parts")
        return flat.view(dtype)
    if data_type in (10, BFLOAT16):  # int32_data holds the 16 bits of each value
        return flat.astype(np.uint16).view(dtype)
    return flat.astype(dtype)
