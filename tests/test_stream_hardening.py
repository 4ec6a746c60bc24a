"""The daemon under attack and after restarts: every finding of the outside reliability run,
each with the test that failed before its fix (docs/protocol.md states the guarantees)."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from helpers import quadrant_data
from hypothesis import given, settings
from hypothesis import strategies as st
from stream_helpers import Served

from tweenstream import Learner, load
from tweenstream.stream import protocol
from tweenstream.stream.checkpoint import CheckpointStore, CheckpointTooLarge
from tweenstream.stream.client import Control
from tweenstream.stream.daemon import Daemon, ServeConfig
from tweenstream.stream.streams import WINDOW, SeqTracker


def _raw(served: Served, *frames: bytes, timeout: float = 20.0) -> list[bytes] | None:
    """One request on a DEALER socket; the reply frames, or None if none came in time."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(served.config.control)
    try:
        sock.send_multipart([b"", *frames])
        if not sock.poll(int(timeout * 1000)):
            return None
        return sock.recv_multipart()[1:]
    finally:
        sock.close()


def _push(served: Served, messages: list[list[bytes]]) -> None:
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.connect(served.config.data)
    for frames in messages:
        sock.send_multipart(frames)
    sock.close(linger=20_000)


def _learn(stream: str, seq: int, n: int = 1, seed: int = 0) -> list[bytes]:
    X, y = quadrant_data(n, seed=seed)
    return protocol.encode("learn", X, y, seq=seq, stream=stream)


@pytest.fixture
def served(net_a):
    s = Served(Learner(net_a, seed=0))
    yield s
    s.stop()


# --- 1. checkpoints that always load --------------------------------------------------------
def test_thousands_of_streams_checkpoint_and_resume_exactly(net_a):
    s = Served(Learner(net_a, seed=0), max_streams=4000, label_capacity=50)
    try:
        messages = []
        for i in range(3000):  # every other stream has a hole at seq 1
            messages.append(_learn(f"sensor-{i:04d}-" + "x" * 50, 0))
            messages.append(_learn(f"sensor-{i:04d}-" + "x" * 50, 2 if i % 2 else 1))
        _push(s, messages)
        s.control.predict(quadrant_data(20, seed=1)[0], ids=list(range(20)))
        s.wait(lambda st: st["messages"] == 6000, timeout=60)
        path = s.control.checkpoint()["path"]
        before = s.control.streams()
    finally:
        s.stop(keep_files=True)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("manifest.json").file_size < 16_384  # small, however many streams
    log = io.StringIO()
    again = Daemon.resume(lambda: Learner(net_a, seed=9), s.config, log=log)
    shutil.rmtree(s.folder)
    assert "checkpoint_corrupt" not in log.getvalue()
    assert len(again.streams) == 3000 and len(again.labels) == 20
    after = {k: v.summary("accuracy") for k, v in again.streams.items()}
    for name, summary in before.items():
        for key in ("last_seq", "applied_through", "gaps", "missing", "samples"):
            assert after[name][key] == summary[key], (name, key)
    holed = again.streams["sensor-0001-" + "x" * 50].seq
    assert holed.admit(1) == "late" and holed.admit(1) == "duplicate"


def test_a_checkpoint_over_its_budget_is_refused_before_writing(net_a, tmp_path):
    store = CheckpointStore(tmp_path, budget=10_000)
    with pytest.raises(CheckpointTooLarge, match="over the budget of 10000"):
        store.write(Learner(net_a), {}, {"big": np.zeros(5000)})
    assert store.paths() == []
    with pytest.raises(ValueError, match="over checkpoint_budget 100000"):
        Daemon(Learner(net_a), ServeConfig(data="inproc://a", control="inproc://b",
                                           checkpoint_dir=str(tmp_path),
                                           checkpoint_budget=100_000))


def test_stale_temporaries_are_removed_at_start(net_a, tmp_path):
    (tmp_path / ".ckpt-000000000007.tsm.abc123.tmp").write_bytes(b"half a file")
    log = io.StringIO()
    Daemon.resume(lambda: Learner(net_a), ServeConfig(
        data="inproc://a", control="inproc://b", checkpoint_dir=str(tmp_path)), log=log)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    events = [json.loads(line) for line in log.getvalue().splitlines()]
    assert any(e["event"] == "temporaries_removed" and e["count"] == 1 for e in events)


def test_waiting_label_inputs_survive_a_restart(net_a):
    s = Served(Learner(net_a, seed=0))
    X, y = quadrant_data(50, seed=3)
    ids = [f"row{i}" for i in range(25)] + list(range(25))
    try:
        s.control.predict(X, ids=ids)
        s.restart()  # shutdown writes a checkpoint; the new daemon resumes from it
        assert s.control.metrics()["labels"]["waiting"] == 50
        _push(s, [protocol.encode("label", None, y, seq=0, ids=ids)])
        st = s.wait(lambda st: st["samples_seen"] == 50)
        assert st["counters"].get("labels_unmatched", 0) == 0
    finally:
        s.stop()


# --- 2. paths from the network are names ----------------------------------------------------
@pytest.mark.parametrize("name", ["../escape.tsm", "/tmp/abs.tsm", "sub/dir.tsm", ".hidden.tsm",
                                  "ckpt-999999999999.tsm", "CKPT-1.tsm", "model.onnx", "",
                                  "a" * 200 + ".tsm", 5, None, ["x.tsm"]])
def test_save_refuses_anything_but_a_plain_new_name(served, name):
    reply = served.control.call("save", name=name)
    assert reply["ok"] is False and reply["code"] == "bad_request", reply
    outputs = Path(served.outputs)
    assert list(outputs.iterdir()) == []
    assert not Path(served.folder, "escape.tsm").exists()


def test_save_does_not_overwrite_or_follow_links_unasked(served, tmp_path):
    assert served.control.save("m.tsm")["ok"]
    reply = served.control.save("m.tsm")
    assert reply["code"] == "bad_request" and "overwrite: true" in reply["reason"]
    assert served.control.save("m.tsm", overwrite=True)["ok"]
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    os.symlink(victim, Path(served.outputs) / "link.tsm")
    reply = served.control.save("link.tsm", overwrite=True)
    assert reply["code"] == "bad_request" and "not a regular file" in reply["reason"]
    assert victim.read_text() == "keep me"
    assert [p.name for p in Path(served.folder, "ck").glob("ckpt-*")] == []


def test_export_by_name_only_and_to_configured_targets_only(served):
    for bad in ("../x.onnx", "x.tsm", "ckpt-1.onnx"):
        assert served.control.call("export", name=bad)["code"] == "bad_request"
    reply = served.control.call("export", name="m.onnx", push="tcp://127.0.0.1:9")
    assert reply["code"] == "bad_request" and "not configured" in reply["reason"]
    job = served.control.export("m.onnx")
    assert job["state"] == "done" and job["path"] == "m.onnx"
    assert (Path(served.outputs) / "m.onnx").stat().st_size > 0


# --- 3. no command blocks the loop -----------------------------------------------------------
def test_a_push_to_a_silent_edge_does_not_block_the_loop(net_a):
    ctx = zmq.Context.instance()
    silent = ctx.socket(zmq.ROUTER)  # accepts the push and never answers
    silent.setsockopt(zmq.LINGER, 0)
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    s = Served(Learner(net_a), push_targets={"edge": f"tcp://127.0.0.1:{port}"},
               push_timeout=30.0)
    try:
        started = s.control.call("export", name="m.onnx", push="edge")
        assert started["ok"] and started["state"] == "running"
        assert silent.poll(60_000), "the push never reached the edge"
        with Control(s.config.control, timeout=5.0, retries=1) as quick:
            assert quick.status()["exports"][-1]["state"] == "running"  # answered meanwhile
            assert quick.call("export", name="n.onnx")["code"] == "busy"
        _push(s, [_learn("during-push", 0, n=100)])
        s.wait(lambda st: st["samples_seen"] == 100)
    finally:
        s.stop()  # the loop stops at once: the push is abandoned, not waited on
        silent.close()


# --- 4. the control socket is private by default --------------------------------------------
def test_default_control_is_a_private_ipc_socket(net_a, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    s = Served(Learner(net_a), control=None)
    try:
        path = Path(s.config.control[len("ipc://"):])
        assert path.parent == tmp_path / "tweenstream"
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert s.control.status()["ok"]
    finally:
        s.stop()


def test_an_unauthenticated_tcp_control_endpoint_needs_an_explicit_opt_in(net_a):
    with pytest.raises(ValueError, match="--insecure-control to accept the risk"):
        Daemon(Learner(net_a), ServeConfig(data="inproc://a", control="tcp://127.0.0.1:5556"))
    with pytest.raises(ValueError, match="without CURVE"):
        Daemon(Learner(net_a), ServeConfig(data="inproc://a", control="ipc://@abstract"))
    s = Served(Learner(net_a), tcp=True)
    try:
        events = [json.loads(x)["event"] for x in s.log.getvalue().splitlines()]
        assert "insecure_control" in events
    finally:
        s.stop()


def test_every_command_has_a_role(served):
    from tweenstream.stream.security import ADMIN, READ

    assert set(served.daemon._commands) == READ | ADMIN and not READ & ADMIN


def test_secret_keys_are_written_owner_only(tmp_path, capsys):
    from tweenstream.cli import main

    assert main(["keys", str(tmp_path), "k"]) == 0
    assert stat.S_IMODE((tmp_path / "k.key_secret").stat().st_mode) == 0o600


# --- 5. exactly one reply per control request -------------------------------------------------
@pytest.mark.parametrize("cmd", [["status"], {"a": 1}, 7, None, True, "x" * 3000, b"status"])
def test_any_cmd_value_gets_one_reply(served, cmd):
    reply = _raw(served, msgpack.packb({"cmd": cmd}))
    assert reply is not None, "no reply"
    answer = protocol.unpack(reply[0])
    assert answer["ok"] is False and answer["code"] == "unknown_command"


def test_overflowing_shapes_get_a_reply_and_no_internal_error(served):
    header = {"v": 1, "kind": "predict", "dtype": "<f4", "shape": [2**40, 2**40]}
    reply = _raw(served, msgpack.packb(header), b"\0" * 32)
    assert reply is not None and protocol.unpack(reply[0])["code"] == "oversized"
    bad = {"v": 1, "kind": "learn", "seq": 0, "dtype": "<f4", "shape": [1, 2**62],
           "y_dtype": "<i8", "y_shape": [1]}
    _push(served, [[msgpack.packb(bad), b"\0" * 32, b"\0" * 8]])
    st = served.wait(lambda st: st["rejected_messages"].get("oversized", 0) == 2)
    assert "internal_error" not in st["rejected_messages"]


def test_a_failing_handler_still_replies_and_logs_a_bounded_number_of_lines(served,
                                                                            monkeypatch):
    def broken(request):
        raise KeyError("bug")

    monkeypatch.setitem(served.daemon._commands, "status", broken)
    for _ in range(30):
        reply = _raw(served, protocol.pack({"cmd": "status"}))
        assert reply is not None
        assert protocol.unpack(reply[0])["code"] == "internal_error"
    lines = [x for x in served.log.getvalue().splitlines() if "internal_error" in x]
    assert len(lines) == 10


# --- 8. byte-bounded intake --------------------------------------------------------------------
def test_frames_larger_than_the_model_can_use_are_cut_off_by_the_transport(served):
    limit = served.control.status()["intake"]["max_frame_bytes"]
    assert limit == 65_536 * 8 * 4  # max_rows of 8 float32 inputs
    header = {"v": 1, "kind": "learn", "seq": 0, "dtype": "<f4", "shape": [1, 8],
              "y_dtype": "<i8", "y_shape": [1]}
    _push(served, [[msgpack.packb(header), b"\0" * (limit + 1), b"\0" * 8],
                   _learn("after", 0)])
    st = served.wait(lambda st: st["samples_seen"] == 1)
    assert st["messages"] == 1 and not st["rejected_messages"]  # never decoded, never held
    intake = st["intake"]
    assert intake["queue_bytes_per_connection"] == 1000 * intake["max_message_bytes"]
    assert {"connections", "queue_bound_bytes", "backlogged_polls"} <= set(intake)


# --- 9. status stays small; every stream is still listed -------------------------------------
def test_status_of_many_streams_fits_the_client_and_streams_pages(net_a):
    served = Served(Learner(net_a), max_streams=2000)
    try:
        _push(served, [_learn(f"stream-with-a-long-name-{i:05d}", 0) for i in range(1500)])
        st = served.wait(lambda st: st["messages"] == 1500, timeout=60)
        assert len(protocol.pack(st)) < 65_536
        assert st["streams_total"] == 1500 and len(st["streams"]) == 50
        assert len(served.control.streams()) == 1500
    finally:
        served.stop()


# --- 10. stream slots are freed -------------------------------------------------------------
def test_stream_slots_run_out_then_idle_ones_are_freed(net_a):
    s = Served(Learner(net_a), max_streams=2)
    try:
        _push(s, [_learn("a", 0), _learn("b", 0), _learn("c", 0)])
        st = s.wait(lambda st: st["rejected_messages"].get("too_many_streams") == 1)
        assert set(st["streams"]) == {"a", "b"} and st["limits"]["max_streams"] == 2
    finally:
        s.stop()
    s = Served(Learner(net_a), max_streams=2, stream_ttl=1e-6)
    try:
        _push(s, [_learn(name, 0) for name in "abcdef"])
        st = s.wait(lambda st: st["messages"] == 6)
        assert "too_many_streams" not in st["rejected_messages"]
        assert st["counters"]["streams_expired"] >= 4 and st["streams_total"] <= 2
    finally:
        s.stop()


# --- 11. sequence numbers cannot be poisoned --------------------------------------------------
def test_a_huge_seq_is_refused_and_does_not_freeze_the_stream(served):
    _push(served, [_learn("s", 0), _learn("s", 2**64 - 1), _learn("s", 10**9), _learn("s", 1),
                   _learn("fresh", 2**63 - 1), _learn("fresh", 0)])
    st = served.wait(lambda st: st["streams"].get("fresh", {}).get("last_seq") == 0)
    assert st["rejected_messages"] == {"bad_header": 1, "seq_jump": 2}
    assert st["streams"]["s"]["jumps"] == 1 and st["streams"]["s"]["last_seq"] == 1
    assert st["samples_seen"] == 3  # a new stream's first seq is bounded too
    assert served.control.call("reset-stream", stream="s")["ok"]
    assert "s" not in served.control.status()["streams"]


def test_nul_in_names_and_ids_is_refused_so_checkpoints_load(served):
    reply = _raw(served, *protocol.encode("predict", quadrant_data(2, seed=0)[0],
                                          ids=["a", "a\0"]))
    assert reply is not None and protocol.unpack(reply[0])["code"] == "bad_header"
    _push(served, [_learn("ok", 0), _learn("\0", 0), _learn("x\0", 0)])
    st = served.wait(lambda st: st["rejected_messages"].get("bad_header") == 3)
    assert set(st["streams"]) == {"ok"}
    served.restart()
    assert served.control.status()["streams_total"] == 1
    assert "checkpoint_corrupt" not in served.log.getvalue()


def test_a_second_daemon_cannot_take_over_a_live_socket(served, net_a):
    with pytest.raises(ValueError, match="in use by another process"):
        Daemon(Learner(net_a), ServeConfig(data="inproc://other",
                                           control=served.config.control))
    assert served.control.status()["ok"]


def test_a_full_resend_buffer_never_blocks_or_raises_while_the_daemon_is_away(tmp_path):
    from tweenstream.stream.client import Producer

    X, y = quadrant_data(5, seed=0)
    with Producer(f"ipc://{tmp_path}/data", control=f"ipc://{tmp_path}/ctl",
                  control_timeout=0.05, resend_messages=2, on_full="drop") as p:
        for i in range(5):
            p.learn(X[i:i + 1], y[i:i + 1])
        assert p.unprotected == 3 and p.seq == 5


# --- the sequence tracker against a naive oracle ---------------------------------------------
def _naive(seqs, strict, max_jump):
    """Applied numbers as a plain set; no bitmap."""
    applied: set[int] = set()
    last = -1
    out = []
    for s in seqs:
        if s > last and s - last > max_jump:
            out.append("jump")
        elif s > last and strict and last >= 0 and s != last + 1:
            out.append("ahead")
        elif s in applied or s <= last - WINDOW or (strict and s <= last):
            out.append("duplicate")
        else:
            out.append("next" if s == last + 1 else "gap" if s > last else "late")
            applied.add(s)
            last = max(last, s)
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 40), st.integers(0, 3 * WINDOW),
                          st.integers(0, 2**63 - 1)), max_size=60),
       st.booleans(), st.sampled_from([5, 2 * WINDOW, 2**62]))
def test_seq_tracker_matches_a_naive_set(seqs, strict, max_jump):
    t = SeqTracker()
    assert [t.admit(s, strict=strict, max_jump=max_jump) for s in seqs] \
        == _naive(seqs, strict, max_jump)
    applied = sorted(set(s for s, v in zip(seqs, _naive(seqs, strict, max_jump), strict=True)
                         if v in ("next", "gap", "late")))
    through = max(-1, applied[-1] - WINDOW) if applied else -1  # older ones count as applied
    while through + 1 in applied:
        through += 1
    assert t.applied_through() == through


def test_saved_models_stay_loadable(served, tmp_path):
    assert served.control.save("k.tsm")["ok"]
    assert load(Path(served.outputs) / "k.tsm").state()["samples_seen"] == 0


def test_the_data_drain_hands_back_to_control_after_its_time_budget(net_a):
    # With a budget shorter than any message, each pass learns one message and the loop looks
    # at the control socket again: status never waits behind a queue of large messages.
    s = Served(Learner(net_a), drain_seconds=1e-9)
    try:
        _push(s, [_learn("big", i, n=2000) for i in range(6)])
        st = s.wait(lambda st: st["messages"] == 6)
        assert st["intake"]["polls"] >= 6
    finally:
        s.stop()


def test_checkpoints_of_the_first_format_still_resume(net_a, tmp_path):
    store = CheckpointStore(tmp_path)
    applied = list(range(0, 11))
    applied.remove(8)
    store.write(Learner(net_a), {"streams": {"old": {
        "seq": {"last": 10, "applied": applied, "gaps": 1, "late": 0, "duplicates": 0,
                "missing": 1},
        "samples": 10, "metric_sum": 9.0, "loss_sum": 1.0, "recent_metric": 0.9,
        "recent_loss": 0.1}}, "counters": {"samples": 10}})
    daemon = Daemon.resume(lambda: Learner(net_a), ServeConfig(
        data="inproc://a", control="inproc://b", checkpoint_dir=str(tmp_path)))
    seq = daemon.streams["old"].seq
    assert (seq.last, seq.applied_through()) == (10, 7)
    assert seq.admit(8) == "late" and seq.admit(9) == "duplicate"
