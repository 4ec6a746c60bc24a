"""Wire protocol: round trips, every reason code, and fuzzed frames that never crash decode."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tweenstream.stream.protocol import (
    REASONS,
    Contract,
    Limits,
    ProtocolError,
    decode,
    encode,
    pack,
    unpack,
)

CLS = Contract(n_inputs=3, n_outputs=4, classification=True)
REG = Contract(n_inputs=3, n_outputs=2, classification=False)
X = np.arange(6, dtype=np.float32).reshape(2, 3)


def _header(frames):
    return msgpack.unpackb(frames[0])


def _with(frames, **changes):
    h = _header(frames)
    h.update(changes)
    return [msgpack.packb(h), *frames[1:]]


def test_round_trip_learn_is_zero_copy():
    frames = encode("learn", X, np.array([1, 3]), seq=4, stream="s")
    msg = decode(frames, CLS)
    assert (msg.kind, msg.seq, msg.stream, msg.rows) == ("learn", 4, "s", 2)
    assert np.array_equal(msg.X, X) and msg.Y.tolist() == [1, 3]
    assert not msg.X.flags.owndata and not msg.X.flags.writeable  # a view of the frame


def test_round_trip_regression_predict_and_label():
    msg = decode(encode("learn_predict", X, np.ones((2, 2)), seq=0), REG)
    assert msg.Y.dtype == np.float32 and msg.Y.shape == (2, 2)
    msg = decode(encode("predict", X[0], ids=["a"]), CLS)
    assert msg.X.shape == (1, 3) and msg.ids == ("a",) and msg.seq is None
    msg = decode(encode("label", Y=np.array([2]), seq=9, ids=["a"]), CLS)
    assert msg.X is None and msg.Y.tolist() == [2] and msg.ids == ("a",)


GOOD = encode("learn", X, np.array([1, 3]), seq=4)


@pytest.mark.parametrize("frames, code, message", [
    ([], "truncated", "empty message"),
    (GOOD[:2], "truncated", "learn needs 3 frames, found 2"),
    ([*GOOD, b"x"], "garbage", "learn has 3 frames, found 4"),
    ([b"\xc1", *GOOD[1:]], "garbage", "header is not msgpack"),
    ([msgpack.packb([1, 2]), *GOOD[1:]], "garbage", "header is not a msgpack map"),
    ([b"\x80" * 5000, *GOOD[1:]], "oversized", "header is 5000 bytes"),
    (_with(GOOD, v=2), "unknown_version", "protocol version 2; this daemon speaks 1"),
    (_with(GOOD, kind="train"), "unknown_kind", "kind 'train'"),
    (_with(GOOD, v=True), "unknown_version", "protocol version True"),
    (_with(GOOD, v=1.0), "unknown_version", "protocol version 1.0"),
    (_with(GOOD, seq=-1), "bad_header", "seq must be an int in [0, 2**63)"),
    (_with(GOOD, seq=2**64 - 1), "bad_header", "seq must be an int in [0, 2**63)"),
    (_with(GOOD, shape=[2**40, 2**40]), "oversized", "rows, limit"),
    (encode("predict", X, ids=[1, 2**64 - 1]), "bad_header", "an id must be an int64"),
    (_with(GOOD, shape=[2, 2**62]), "oversized", "shape [2, 4611686018427387904] needs"),
    (_with(GOOD, seq=None), "bad_header", "a learn message needs a seq"),
    (_with(GOOD, stream=""), "bad_header", "stream must be a str"),
    (_with(GOOD, stream="a\0"), "bad_header", "without NUL"),
    (encode("predict", X, ids=["a", "b\0"]), "bad_header", "an id must be an int64"),
    (_with(GOOD, dtype="<f8"), "wrong_dtype", "dtype must be '<f4', found '<f8'"),
    (_with(GOOD, y_dtype="<f4"), "wrong_dtype", "y_dtype must be '<i8'"),
    (_with(GOOD, shape=[2, 4]), "truncated", "shape [2, 4] needs 32 bytes, frame has 24"),
    (_with(GOOD, shape=[1, 3]), "garbage", "shape [1, 3] needs 12 bytes, frame has 24"),
    (_with(GOOD, shape=[3, 2]), "wrong_shape", "X shape [3, 2]; this model takes [n, 3]"),
    (_with(GOOD, shape="2x3"), "wrong_shape", "shape must be a list of 1 or 2 positive ints"),
    (_with(GOOD, y_shape=[1]), "garbage", "y_shape [1] needs 8 bytes, frame has 16"),
    (_with(GOOD, ids=[1, 2]), "bad_header", "ids belong on predict or label"),
    (encode("learn", X, np.array([1, 4]), seq=0), "bad_label", "labels must be in [0, 4)"),
    (encode("learn", np.full((2, 3), np.nan), np.array([1, 2]), seq=0), "nan", "X holds NaN"),
    (encode("predict", X, ids=["a"]), "bad_header", "ids must be a list of 2 ids"),
    (encode("label", Y=np.array([1]), seq=0), "bad_header", "a label message needs ids"),
])
def test_every_defect_has_a_reason_code(frames, code, message):
    with pytest.raises(ProtocolError) as err:
        decode(frames, CLS)
    assert err.value.code == code and code in REASONS
    assert message in err.value.reason


def test_limits():
    big = encode("learn", np.zeros((40, 3), np.float32), np.zeros(40, np.int64), seq=0)
    with pytest.raises(ProtocolError, match="oversized: 40 rows, limit 32"):
        decode(big, CLS, Limits(max_rows=32))
    with pytest.raises(ProtocolError, match="oversized: message is"):
        decode(big, CLS, Limits(max_bytes=500))
    with pytest.raises(ProtocolError, match="nan: Y holds NaN"):
        decode(encode("learn", X, np.array([[np.inf, 0], [0, 0]], np.float32), seq=0), REG)


def test_control_messages():
    assert unpack(pack({"cmd": "status", "x": 1})) == {"cmd": "status", "x": 1}
    with pytest.raises(ProtocolError, match="garbage: a control message is a msgpack map"):
        unpack(msgpack.packb("status"))
    with pytest.raises(ProtocolError, match="oversized"):
        unpack(b"\x80" * 100, max_bytes=10)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=4))
def test_random_frames_are_rejected_cleanly(frames):
    try:
        decode(frames, CLS)
    except ProtocolError as err:
        assert err.code in REASONS


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2), st.integers(0, 200), st.binary(min_size=1, max_size=8))
def test_mutated_valid_frames_never_escape(frame, position, junk):
    frames = [bytearray(f) for f in GOOD]
    target = frames[frame]
    position %= len(target) + 1
    target[position:position + len(junk)] = junk
    try:
        msg = decode([bytes(f) for f in frames], CLS)
    except ProtocolError as err:
        assert err.code in REASONS
    else:  # a mutation that still decodes must still satisfy the contract
        assert msg.X.shape[1] == 3 and np.isfinite(msg.X).all()
        assert ((msg.Y >= 0) & (msg.Y < 4)).all()
