"""The daemon learns the messages one drain received as batches: consecutive learn messages of
one stream in one ``learn_many`` call. Same result as learning them one by one, in the order
received; a bad message is refused alone, before its seq is admitted."""

from __future__ import annotations

import numpy as np
import pytest

from tweenstream import Dense, Learner, Network
from tweenstream.models import Embedding, Flatten
from tweenstream.stream import protocol
from tweenstream.stream.daemon import Daemon, ServeConfig


class Frame:
    """What the daemon reads of a received zmq frame."""

    def __init__(self, data: bytes) -> None:
        self.buffer = memoryview(data)


def _msg(X, y, seq, stream="s"):
    return [Frame(f) for f in protocol.encode("learn", np.asarray(X, np.float32), np.asarray(y),
                                               seq=seq, stream=stream)]


def _daemon(tmp_path, net=None) -> Daemon:
    learner = Learner(net or Network(4, [Dense(8, "tanh"), Dense(3)]), seed=0)
    return Daemon(learner, ServeConfig(data=f"ipc://{tmp_path}/d", control=f"ipc://{tmp_path}/c"))


def _rows(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n)


@pytest.mark.parametrize("sizes", [[1] * 40, [3, 1, 7, 2, 30, 1]])
def test_a_batch_learns_exactly_what_one_message_at_a_time_learns(tmp_path, sizes):
    X, y = _rows(sum(sizes))
    batched, single = _daemon(tmp_path / "a"), _daemon(tmp_path / "b")
    msgs, at = [], 0
    for i, n in enumerate(sizes):  # two streams, interleaved in runs
        msgs.append(_msg(X[at:at + n], y[at:at + n], seq=i, stream="even" if i % 3 else "odd"))
        at += n
    batched._on_batch(msgs)
    for m in msgs:
        single._on_batch([m])
    assert np.array_equal(batched.learner.arena.params, single.learner.arena.params)
    reference = Learner(Network(4, [Dense(8, "tanh"), Dense(3)]), seed=0)
    reference.learn_many(X, y)
    assert np.array_equal(batched.learner.arena.params, reference.arena.params)
    for name in ("even", "odd"):
        assert batched.streams[name].samples == single.streams[name].samples
        assert batched.streams[name].metric_sum == pytest.approx(single.streams[name].metric_sum)
    assert batched.counters == single.counters
    assert batched.counters["messages"] == len(sizes)


def test_a_bad_message_is_refused_alone_and_its_seq_can_be_sent_again(tmp_path):
    d = _daemon(tmp_path)
    X, y = _rows(6)
    nan = X[2:3].copy()
    nan[0, 1] = np.nan
    batch = [_msg(X[0:1], y[0:1], 0), _msg(X[1:2], y[1:2], 1), _msg(nan, y[2:3], 2),
             _msg(X[3:4], [7], 3),  # a label out of range
             _msg(X[4:5], y[4:5], 4), [Frame(b"\xc1garbage")]]
    d._on_batch(batch)
    assert d.rejected == {"nan": 1, "bad_label": 1, "garbage": 1}
    assert d.counters["samples"] == 3 and d.counters["messages"] == 3
    d._on_batch([_msg(X[2:3], y[2:3], 2), _msg(X[3:4], y[3:4], 3)])  # fixed and sent again
    assert d.counters["samples"] == 5 and d.counters.get("duplicates", 0) == 0
    reference = Learner(Network(4, [Dense(8, "tanh"), Dense(3)]), seed=0)
    reference.learn_many(X[[0, 1, 4, 2, 3]], y[[0, 1, 4, 2, 3]])
    assert np.array_equal(d.learner.arena.params, reference.arena.params)


def test_a_duplicate_inside_a_batch_is_learned_once(tmp_path):
    d = _daemon(tmp_path)
    X, y = _rows(3)
    d._on_batch([_msg(X[0:1], y[0:1], 0), _msg(X[1:2], y[1:2], 1), _msg(X[1:2], y[1:2], 1),
                 _msg(X[2:3], y[2:3], 2)])
    assert d.counters["samples"] == 3 and d.counters["duplicates"] == 1


def test_a_token_id_out_of_range_refuses_only_its_message(tmp_path):
    d = _daemon(tmp_path, Network(3, [Embedding(5, 2), Flatten(), Dense(3)]))
    ok = np.array([[0, 1, 2]], np.float32)
    d._on_batch([_msg(ok, [0], 0), _msg([[0, 9, 1]], [1], 1), _msg(ok, [2], 2)])
    assert d.rejected == {"bad_value": 1}
    assert d.counters["samples"] == 2 and d.counters["messages"] == 2
