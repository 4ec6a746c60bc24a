"""Fuzz the daemon with malformed messages on its data and control sockets.

Starts ``tweenstream serve`` (8 inputs, 4 classes) on ipc endpoints in a fresh short folder under
/tmp and sends a seeded mix of: random bytes, missing or extra frames, valid messages with
mutated bytes, headers with a wrong value for one key, shapes whose element count overflows
int64, and (control only) maps whose ``cmd`` has a wrong type or an unknown name, or read-only
commands with bad arguments. A valid ``learn`` goes to the data socket every ``VALID_EVERY``
messages. No command that changes state is sent, except ``shutdown`` at the end.

Every control request must get exactly one reply. Each generator tag has its own DEALER socket
(a lane) and the daemon answers a lane in order, so a *fence* (an unknown command with a unique
name, which the reply echoes) settles every request sent on that lane before it. Requests go in
rounds of ``window // 2``; a round starts once the fences of the round before last are back.

Run from the repository root; it prints one JSON line and exits 0 only if the daemon did not
crash, answered every control request and exited 0 after ``shutdown``::

    python -m bench.daemon_fuzz [--messages N] [--seed S] [--json OUT] [--max-seconds T]
"""

from __future__ import annotations

import argparse
import bisect
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import zmq

from tweenstream.stream import protocol
from tweenstream.stream.client import Control

INPUTS, OUTPUTS = 8, 4
VALID_EVERY = 1000
STALL_S = 30.0  # longest wait for replies, fences or a free data queue before giving up
HUGE = (1 << 64) - 1  # the largest int msgpack can carry
BIG = msgpack.ExtType(1, (1 << 70).to_bytes(9, "big"))  # stands for 2**70: msgpack has no bigint
FORBIDDEN = frozenset({"shutdown", "save", "export", "checkpoint", "set-phase", "refine"})
READ_ONLY = ("status", "metrics")  # the only known commands sent during the fuzz
MISSING = object()
WRONG: dict[str, tuple[Any, ...]] = {  # header key -> wrong values ("extra": a key of a bad type)
    "v": (True, 1.0, "1", HUGE, BIG, -1, 0, 2, None, [1], {"v": 1}, MISSING),
    "kind": (["learn"], {"learn": 1}, 1, None, "", "LEARN", "learn" * 900, b"learn", MISSING),
    "seq": (-1, HUGE, 1 << 63, BIG, 1.5, "1", True, None, [1], {}, MISSING),
    "stream": ("s" * 65, "s" * 1000, "", 7, None, ["a"], {"a": 1}, b"bytes", True),
    "dtype": ("<f8", ">f4", "f4", "<i8", "", 4, None, ["<f4"], {"<f4": 1}, True, MISSING),
    "shape": ([], [0, 8], [-1, 8], [1, 8, 1], [1.0, 8], ["1", "8"], [True, 8], None, 8, "1,8",
              {"n": 1}, [HUGE, 8], [2**40, 2**40], [1, HUGE], [[1], 8], [1, BIG], MISSING),
    "y_dtype": ("<i4", "<f4", ">i8", "", 8, None, ["<i8"], MISSING),
    "y_shape": ([], [0], [-1], [1, 1], [1.5], ["1"], [False], None, 1, [HUGE], [2**40, 2**40],
                [1, HUGE], MISSING),
    "ids": (7, "ids", [1.5], [None], [["a"]], [{"a": 1}], ["x" * 65], [True], [HUGE],
            list(range(300)), [BIG], MISSING),
    "extra": (1, -1, 1.5, None, True, b"kind", "x" * 100),
}
OVERFLOW = ((65536, 1 << 48), (4, 1 << 62), (3, 1 << 62), (2, 1 << 63), (1, HUGE),
            (65536, HUGE), (1 << 16, 1 << 47))  # rows within the limit, rows * width >= 2**63
CMD_VALUES: dict[str, tuple[Any, ...]] = {
    "list": (["status"], [], [1, 2], [["status"]]), "map": ({"status": 1}, {}, {"cmd": "status"}),
    "int": (0, -1, 7, HUGE, -(1 << 63)), "none": (None,), "float": (1.5, float("nan")),
    "bool": (True, False), "bytes": (b"status", b"", b"\xff"), "ext": (BIG,),
    "unknown": ("", "STATUS", "status ", "stat", "help", "predict", "ping", "\x00", "\u00e9tat"),
    "huge": ("s" * 5000, "status" * 600, "x" * 4000),
}
ARG_KEYS = ("path", "phase", "push", "timeout", "stream", "verbose", "")
ARG_VALUES = ([1], {"a": {"b": [None]}}, None, HUGE, -1, 1.5, "x" * 3000, b"\x00", True, BIG,
              [[[[[[[[[[[]]]]]]]]]]])


def _int(r: np.random.Generator, low: int, high: int) -> int:
    return low + int(r.random() * (high - low))  # ~10x faster than r.integers for one number


def _pick(r: np.random.Generator, options: Any) -> Any:
    return options[_int(r, 0, len(options))]


def _pool(seed: int, stream: str, size: int = 64) -> dict[str, list[list[bytes]]]:
    """``size`` valid messages of each kind, encoded once (encoding per message is slow)."""
    r = np.random.default_rng(seed)
    pool: dict[str, list[list[bytes]]] = {kind: [] for kind in protocol.KINDS}
    for kind in [k for k in protocol.KINDS for _ in range(size)]:
        n = _int(r, 1, 5)
        ids = list(range(n)) if kind in ("predict", "label") else None
        seq = None if kind == "predict" else _int(r, 0, 1 << 20)
        pool[kind].append(protocol.encode(kind, r.standard_normal((n, INPUTS)),
                                          r.integers(0, OUTPUTS, n), seq=seq, stream=stream,
                                          ids=ids))
    return pool


POOLS = {"fuzz": _pool(1, "fuzz"), "fuzz-h": _pool(2, "fuzz-h")}


def _message(r: np.random.Generator, stream: str = "fuzz") -> list[bytes]:
    return list(_pick(r, POOLS[stream][_pick(r, protocol.KINDS)]))


def _random_bytes(r: np.random.Generator) -> tuple[str, list[bytes]]:
    frames = [r.bytes(_int(r, 0, 64)) for _ in range(_int(r, 1, 5))]
    if r.random() < 0.05:
        frames[0] = r.bytes(_int(r, 4000, 9000))
    if r.random() < 0.3:  # a map marker first, so that msgpack reads further before failing
        frames[0] = bytes([0x80 + _int(r, 0, 16)]) + frames[0]
    return "random_bytes", frames


FRAME_OPS: dict[str, Any] = {  # (rng, frames, index of an array frame) -> new frames
    "drop_last": lambda r, f, i: f[:-1], "drop_first": lambda r, f, i: f[1:],
    "header_only": lambda r, f, i: f[:1], "twice": lambda r, f, i: f + f,
    "extra_empty": lambda r, f, i: f + [b""] * _int(r, 1, 4),
    "extra_bytes": lambda r, f, i: [*f, r.bytes(8)], "empty_header": lambda r, f, i: [b"", *f[1:]],
    "truncate": lambda r, f, i: [*f[:i], f[i][:_int(r, 0, len(f[i]))], *f[i + 1:]],
    "extend": lambda r, f, i: [*f[:i], f[i] + r.bytes(_int(r, 1, 9)), *f[i + 1:]],
}


def _frames(r: np.random.Generator) -> tuple[str, list[bytes]]:
    frames, op = _message(r), _pick(r, tuple(FRAME_OPS))
    return f"frames:{op}", FRAME_OPS[op](r, frames, _int(r, 1, len(frames)))


def _mutated(r: np.random.Generator) -> tuple[str, list[bytes]]:
    frames = _message(r)
    i = 0 if r.random() < 0.7 else _int(r, 1, len(frames))
    data = bytearray(frames[i])
    for _ in range(_int(r, 1, 4)):
        pos, op = _int(r, 0, len(data) + 1), _pick(r, ("set", "insert", "delete"))
        if op == "insert" or not data:
            data.insert(pos, _int(r, 0, 256))
        elif op == "set":
            data[pos % len(data)] = _int(r, 0, 256)
        else:
            del data[pos % len(data)]
    frames[i] = bytes(data)
    return f"mutated:{'header' if i == 0 else 'array'}", frames


def _header(r: np.random.Generator) -> tuple[str, list[bytes]]:
    frames = _message(r, "fuzz-h")
    header = msgpack.unpackb(frames[0])
    key = _pick(r, tuple(WRONG))
    value = _pick(r, WRONG[key])
    if key == "extra":
        header[value] = "x"
    elif value is MISSING:
        header.pop(key, None)
    else:
        header[key] = value
    return f"header:{key}", [msgpack.packb(header), *frames[1:]]


def _overflow(r: np.random.Generator) -> tuple[str, list[bytes]]:
    frames = _message(r)
    header = msgpack.unpackb(frames[0])
    key = {"label": "y_shape", "predict": "shape"}.get(header["kind"]) or _pick(
        r, ("shape", "y_shape"))
    rows, width = header[key] = list(_pick(r, OVERFLOW))
    size = ((rows * width + (1 << 63)) % (1 << 64) - (1 << 63)) * (4 if key == "shape" else 8)
    # a frame as long as the int64-wrapped size gets past the byte-length checks
    frames[1 if key == "shape" else -1] = bytes(size if 0 <= size <= 4096 else 0)
    return f"overflow:{key}", [msgpack.packb(header), *frames[1:]]


def _cmd(r: np.random.Generator) -> tuple[str, list[bytes]]:
    what = _pick(r, tuple(CMD_VALUES))
    return f"cmd:{what}", [msgpack.packb({"cmd": _pick(r, CMD_VALUES[what])})]


def _args(r: np.random.Generator) -> tuple[str, list[bytes]]:
    request: dict[Any, Any] = {"cmd": _pick(r, READ_ONLY)}
    for _ in range(_int(r, 1, 4)):
        request[_pick(r, ARG_KEYS)] = _pick(r, ARG_VALUES)
    if r.random() < 0.1:
        request[1] = 2  # a key that is not a str
    return f"args:{request['cmd']}", [msgpack.packb(request)]


# generators and their cumulative weights
DATA = ((_random_bytes, _frames, _mutated, _header, _overflow), (1, 2, 4, 7, 7.5))
CONTROL = ((*DATA[0], _cmd, _args), (*DATA[1], 9.5, 9.7))


def _draw(r: np.random.Generator, table: tuple[tuple[Any, ...], tuple[float, ...]]) -> Any:
    return table[0][bisect.bisect(table[1], r.random() * table[1][-1])](r)


def _harmless(frames: list[bytes]) -> bool:
    """False if the first frame would run a command that changes state (none does by design)."""
    try:
        obj = msgpack.unpackb(frames[0] if frames else b"", raw=False, strict_map_key=False)
    except (ValueError, TypeError, OverflowError):
        return True
    cmd = obj.get("cmd") if isinstance(obj, dict) else None
    return not (isinstance(cmd, str) and cmd in FORBIDDEN)


class _Lanes:
    """One DEALER socket per generator tag; fences settle which requests got no reply."""

    def __init__(self, ctx: zmq.Context, endpoint: str, nonce: str) -> None:
        self.ctx, self.endpoint, self.nonce, self.fences = ctx, endpoint, nonce, 0
        self.lanes: dict[str, dict[str, Any]] = {}
        self.by_socket: dict[zmq.Socket, dict[str, Any]] = {}
        self.poller = zmq.Poller()

    def send(self, tag: str, frames: list[bytes]) -> None:
        if tag not in self.lanes:
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 0)  # a reply dropped here would look unanswered
            sock.connect(self.endpoint)
            self.poller.register(sock, zmq.POLLIN)
            self.lanes[tag] = self.by_socket[sock] = {
                "sock": sock, "sent": 0, "replies": 0, "unfenced": 0, "fences": deque()}
        lane = self.lanes[tag]
        lane["sock"].send_multipart([b"", *frames])  # the empty delimiter a REQ socket adds
        lane["sent"] += 1
        lane["unfenced"] += 1

    def fence(self) -> int:
        """Fence each lane with requests since its last fence; returns the first fence id."""
        first = self.fences
        for lane in self.lanes.values():
            if lane["unfenced"]:
                name = f"fence-{self.nonce}-{self.fences}"
                lane["sock"].send_multipart([b"", protocol.pack({"cmd": name})])
                lane["fences"].append((self.fences, f"'{name}'".encode()))
                lane["unfenced"] = 0
                self.fences += 1
        return first

    def oldest(self) -> float:
        """The id of the oldest fence not yet back (inf if none)."""
        return min((lane["fences"][0][0] for lane in self.lanes.values() if lane["fences"]),
                   default=float("inf"))

    def receive(self, timeout_ms: int) -> None:
        for sock, _ in self.poller.poll(timeout_ms):
            lane = self.by_socket[sock]
            while sock.poll(0, zmq.POLLIN):
                frames = sock.recv_multipart()
                if lane["fences"] and lane["fences"][0][1] in frames[-1]:
                    lane["fences"].popleft()  # requests before it were answered or never will be
                else:
                    lane["replies"] += 1

    def close(self) -> None:
        for sock in self.by_socket:
            sock.close(linger=0)


def _until(done: Any, lanes: _Lanes, proc: subprocess.Popen, deadline: float) -> bool:
    """Receive replies until ``done()``; False if the daemon died or the deadline passed."""
    while not done():
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        lanes.receive(100)
    return True


def _push(sock: zmq.Socket, frames: list[bytes], proc: subprocess.Popen, deadline: float) -> bool:
    while True:
        try:
            sock.send_multipart(frames)  # SNDTIMEO bounds each try
            return True
        except zmq.Again:
            if proc.poll() is not None or time.monotonic() > deadline:
                return False


def _rss_mb(pid: int) -> float | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    found = [int(line.split()[1]) for line in lines if line.startswith("VmRSS:")]
    return round(found[0] / 1024, 1) if found else None


def _status(ctx: zmq.Context, endpoint: str, proc: subprocess.Popen,
            deadline: float) -> dict[str, Any] | None:
    with Control(endpoint, timeout=2.0, retries=1, context=ctx) as control:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                return control.status()
            except TimeoutError:
                continue  # starting (compiling) or busy: ask again until the deadline
    return None


def fuzz(messages: int = 1_000_000, seed: int = 0, *, max_seconds: float = 1800.0,
         control_share: float = 0.5, window: int = 256) -> dict[str, Any]:
    """Send ``messages`` malformed messages to a fresh daemon; report how it coped.

    Examples
    --------
    >>> report = fuzz(messages=2_000, seed=1)  # doctest: +SKIP
    >>> report["crashed"], report["unanswered"], report["exit_code"]  # doctest: +SKIP
    (False, 0, 0)
    """
    if messages < 0 or window < 2:
        raise ValueError(f"need messages >= 0 and window >= 2, found {messages}, {window}")
    r = np.random.default_rng(seed)
    folder = Path(tempfile.mkdtemp(prefix="tsf-", dir="/tmp"))  # ipc paths must be short
    ctl, started = f"ipc://{folder}/ctl", time.monotonic()
    deadline = started + max_seconds
    with open(folder / "stderr", "wb") as err:
        proc = subprocess.Popen([
            sys.executable, "-m", "tweenstream", "serve", "--data", f"ipc://{folder}/data",
            "--control", ctl, "--checkpoint-dir", str(folder / "ck"), "--checkpoint-interval",
            "5", "--log", str(folder / "log"), "--inputs", str(INPUTS), "--outputs",
            str(OUTPUTS)], stdout=err, stderr=err)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.setsockopt(zmq.SNDTIMEO, 1000)
    push.connect(f"ipc://{folder}/data")
    lanes = _Lanes(ctx, ctl, f"{int(np.random.default_rng([seed, 1]).integers(1 << 32)):08x}")
    sent: Counter[str] = Counter()
    rss: list[float | None] = []
    stopped, final, exit_code, settled, crashed, seconds = None, None, None, False, False, 0.0
    try:
        if _status(ctx, ctl, proc, min(deadline, started + 300)) is None:
            stopped = "not_started"
        rss.append(_rss_mb(proc.pid))
        t0 = time.monotonic()
        for i in range(messages if stopped is None else 0):
            if i % VALID_EVERY == 0:
                if time.monotonic() > deadline:
                    stopped = "deadline"
                    break
                frames = protocol.encode("learn", r.standard_normal((16, INPUTS)),
                                         r.integers(0, OUTPUTS, 16), seq=sent["valid"],
                                         stream="fuzz-valid")
                if not _push(push, frames, proc, deadline):
                    stopped = "push_failed"
                    break
                sent["valid"] += 1
            if r.random() < control_share:
                tag, frames = _draw(r, CONTROL)
                while not _harmless(frames):
                    tag, frames = _draw(r, CONTROL)
                lanes.send(tag, frames)
                sent["control"] += 1
                if sent["control"] % (window // 2) == 0:
                    first = lanes.fence()  # then settle the round before this one
                    if not _until(lambda f=first: lanes.oldest() >= f, lanes, proc,
                                  min(deadline, time.monotonic() + STALL_S)):
                        stopped = "stalled"
                        break
            elif _push(push, _draw(r, DATA)[1], proc, deadline):
                sent["data"] += 1
            else:
                stopped = "push_failed"
                break
            if i % max(1, min(50_000, messages // 20)) == 0:
                rss.append(_rss_mb(proc.pid))
        lanes.fence()
        settled = _until(lambda: lanes.oldest() == float("inf"), lanes, proc,
                         time.monotonic() + STALL_S)
        seconds = time.monotonic() - t0
        last = protocol.encode("learn", np.zeros((1, INPUTS)), [0], seq=sent["valid"],
                               stream="fuzz-valid")  # data is handled in order: wait for it
        until = time.monotonic() + 60
        drained = _push(push, last, proc, until)
        while drained and time.monotonic() < until:
            final = _status(ctx, ctl, proc, until)
            if final is None or final["streams"].get("fuzz-valid", {}).get("last_seq") \
                    == sent["valid"]:
                break
            time.sleep(0.01)  # polling a condition, bounded by the deadline
        rss.append(_rss_mb(proc.pid))
        crashed = proc.poll() is not None
        if not crashed:
            with Control(ctl, timeout=30.0, retries=1, context=ctx) as control:
                control.shutdown()
            exit_code = proc.wait(timeout=30)
    except (TimeoutError, subprocess.TimeoutExpired) as err:
        stopped, crashed = f"{stopped or ''} {type(err).__name__}", proc.poll() is not None
    finally:
        lanes.close()
        push.close(linger=0)
        ctx.term()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        exit_code = proc.returncode if exit_code is None else exit_code
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        tail = (folder / "stderr").read_text(errors="replace")[-2000:]
        shutil.rmtree(folder, ignore_errors=True)
    errors = Counter(json.loads(line).get("error", "")[:120] for line in log.splitlines()
                     if '"internal_error"' in line)
    replies = sum(lane["replies"] for lane in lanes.lanes.values())
    total = sent["data"] + sent["control"]
    return {
        "messages": total, "data_messages": sent["data"], "control_messages": sent["control"],
        "control_replies": replies, "unanswered": sent["control"] - replies, "crashed": crashed,
        "exit_code": exit_code,
        "rss_mb": {"baseline": rss[0] if rss else None, "final": rss[-1] if rss else None,
                   "peak": max((m for m in rss if m is not None), default=None)},
        "rejected_messages": final["rejected_messages"] if final else None,
        "seconds": round(seconds, 2), "messages_per_s": round(total / max(seconds, 1e-9)),
        "valid_messages": sent["valid"], "samples_seen": final["samples_seen"] if final else None,
        "settled": settled, "drained": final is not None, "stopped_early": stopped,
        "fences": lanes.fences, "seed": seed,
        "unanswered_by_generator": {tag: [lane["sent"], lane["sent"] - lane["replies"]]
                                    for tag, lane in sorted(lanes.lanes.items())
                                    if lane["sent"] != lane["replies"]},  # tag: [sent, unanswered]
        "internal_errors": dict(errors.most_common(5)),
        "stderr_tail": tail if crashed or exit_code != 0 else "",
    }


def passed(report: dict[str, Any]) -> bool:
    """True if the daemon lived, answered every control request and exited 0.

    Examples
    --------
    >>> passed({"crashed": False, "unanswered": 0, "exit_code": 0})
    True
    """
    return not report["crashed"] and report["unanswered"] == 0 and report["exit_code"] == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.daemon_fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--max-seconds", type=float, default=1800.0,
                        help="stop sending after this many seconds (default 1800)")
    args = parser.parse_args(argv)
    report = fuzz(args.messages, args.seed, max_seconds=args.max_seconds)
    line = json.dumps(report)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")
    return 0 if passed(report) else 1


if __name__ == "__main__":
    raise SystemExit(main())
