"""Decoding one message: the whole ``decode`` against ``decode_frames`` (no value checks; the
daemon checks the values of a drain's rows in one pass)."""

from __future__ import annotations

import numpy as np
import pytest

from tweenstream.stream import protocol

CONTRACT = protocol.Contract(8, 4, True)


@pytest.mark.parametrize("how", ["decode", "decode_frames"])
@pytest.mark.parametrize("rows", [1, 64])
def test_decode(benchmark, how, rows):
    frames = [memoryview(f) for f in protocol.encode(
        "learn", np.ones((rows, 8), np.float32), np.zeros(rows, np.int64), seq=5)]
    benchmark.extra_info.update(table="protocol", how=how, rows=rows)
    msg = benchmark(getattr(protocol, how), frames, CONTRACT)
    assert msg.rows == rows
