"""The streaming daemon: learns test-then-train from ZeroMQ streams, never dies on bad input.

Sockets (endpoints from ``ServeConfig``):
- data (PULL, or SUB): ``learn`` and ``label`` messages (docs/protocol.md);
- control (ROUTER): read commands (``status``, ``metrics``, ``streams``, ``acked``, ``job``),
  admin commands (``checkpoint``, ``set-phase``, ``save``, ``export``, ``refine``,
  ``reset-stream``, ``shutdown``; see ``security.py`` for who may send them), and ``predict`` /
  ``learn_predict`` messages, which get predictions back;
- metrics (PUB, optional): a ``metrics`` frame and a msgpack map every ``metrics_interval`` s.

The loop polls with a timeout and checks a stop flag; signals only set that flag. Every control
request gets exactly one reply; every failure is counted and answered (or logged, rate-limited)
with a reason code, and the loop goes on. Slow work (exports and their pushes, refinement)
runs off the loop.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import zmq

from tweenstream import __version__
from tweenstream.latency import LatencyWindow
from tweenstream.modes import MODES
from tweenstream.runtime.learner import Learner
from tweenstream.stream import protocol
from tweenstream.stream.checkpoint import Checkpoint, CheckpointStore, CheckpointTooLarge
from tweenstream.stream.daemon_state import check_budget, check_state, parse_state, state_parts
from tweenstream.stream.intake import Intake
from tweenstream.stream.labels import DelayedLabels
from tweenstream.stream.outputs import ExportJobs, OutputDir
from tweenstream.stream.protocol import Contract, ProtocolError
from tweenstream.stream.security import (
    READ,
    check_control,
    claim_ipc,
    default_control,
    restrict_ipc,
)
from tweenstream.stream.settings import ServeConfig
from tweenstream.stream.streams import StreamStats

__all__ = ["PHASES", "Daemon", "ServeConfig"]

PHASES = MODES  # set-phase accepts every mode; "hybrid" restarts the schedule
_PAGE = 1000  # streams per 'streams' reply, at most


MAX_GROUP_ROWS = 4096  # rows of consecutive messages learned in one call


class Daemon:
    """One learner served over ZeroMQ. ``run()`` blocks until ``shutdown`` or a signal.

    Examples
    --------
    >>> from tweenstream import Dense, Learner, Network
    >>> d = Daemon(Learner(Network(8, [Dense(4)])), ServeConfig(data="inproc://d",
    ...            control="inproc://c"))
    >>> d.contract
    Contract(n_inputs=8, n_outputs=4, classification=True)
    """

    def __init__(self, learner: Learner, config: ServeConfig, *, log: TextIO | None = None,
                 state: Checkpoint | None = None) -> None:
        self.learner = learner
        self.config = config
        self.control_endpoint = config.control or default_control()
        self._control_warning = check_control(self.control_endpoint, config.curve,
                                              config.insecure_control)
        for endpoint in (self.control_endpoint, config.metrics,
                         None if config.subscribe else config.data):
            if endpoint:
                claim_ipc(endpoint)
        net = learner.network
        self.contract = Contract(net.n_inputs, net.n_outputs, net.task == "classification")
        self.metric = "accuracy" if self.contract.classification else "mae"
        self.streams: dict[str, StreamStats] = {}
        self.rejected: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.labels = DelayedLabels(config.label_capacity, net.n_inputs, config.label_max_age)
        self.intake = Intake(self.contract, config.limits, config.rcvhwm, config.queue_bytes)
        self.store = CheckpointStore(config.checkpoint_dir, config.keep_checkpoints,
                                     config.checkpoint_budget) if config.checkpoint_dir else None
        if self.store is not None:
            check_budget(learner, config, self.labels)
        folder = config.output_dir or (str(Path(config.checkpoint_dir) / "exports")
                                       if config.checkpoint_dir else None)
        self.outputs = OutputDir(folder) if folder else None
        self.exports = ExportJobs(self.outputs, config.push_targets, config.push_timeout) \
            if self.outputs is not None else None
        self._log_file = log if log is not None else sys.stderr
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the sockets are bound
        self.bound: dict[str, str] = {}  # actual endpoints (a tcp port 0 / * becomes a number)
        self._xbuf = np.zeros((0, net.n_inputs), dtype=np.float32)
        self._ybuf = np.zeros((0,) if self.contract.classification else (0, net.n_outputs),
                              dtype=np.int64 if self.contract.classification else np.float32)
        self._bx, self._by = self._xbuf.copy(), self._ybuf.copy()  # one drain's learn rows
        self.latency = LatencyWindow()  # predict requests on the control socket
        self.exporter: Any = None  # the Prometheus endpoint, while serving with one
        self._timed = False
        self._started = time.monotonic()
        self._served_before = 0.0  # seconds served before the checkpoint we resumed from
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._next_sweep = 0.0
        self._admin = True  # the role of the control request being handled
        self._commands: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "status": self._cmd_status, "metrics": self._cmd_metrics,
            "streams": self._cmd_streams, "acked": self._cmd_acked, "job": self._cmd_job,
            "checkpoint": self._cmd_checkpoint, "set-phase": self._cmd_set_phase,
            "save": self._cmd_save, "export": self._cmd_export, "shutdown": self._cmd_shutdown,
            "refine": self._cmd_refine, "reset-stream": self._cmd_reset_stream,
            "configure": self._cmd_configure,
        }
        if state is not None:
            self.streams, self._served_before = parse_state(state, self.labels)
            self.counters.update(state.extra.get("counters", {}))
            self.rejected.update(state.extra.get("rejected", {}))

    # --- lifecycle ------------------------------------------------------------------------
    @classmethod
    def resume(cls, fallback: Callable[[], Learner], config: ServeConfig, *,
               log: TextIO | None = None) -> Daemon:
        """A daemon from the newest valid checkpoint in ``config.checkpoint_dir``, else fresh."""
        found = Checkpoint(None, {}, {}, [])
        removed = 0
        if config.checkpoint_dir:
            store = CheckpointStore(config.checkpoint_dir, config.keep_checkpoints,
                                    config.checkpoint_budget)
            removed = store.removed_temporaries
            found = store.latest(check=check_state)
        learner = found.learner
        daemon = cls(learner or fallback(), config, log=log,
                     state=found if learner is not None else None)
        if removed:
            daemon.log("temporaries_removed", count=removed)
        for problem in found.problems:
            daemon.log("checkpoint_corrupt", reason=problem)
        if learner is not None:
            daemon.log("resumed", samples_seen=learner.state()["samples_seen"],
                       streams=len(daemon.streams), labels_waiting=len(daemon.labels))
        return daemon

    def stop(self) -> None:
        """Ask the loop to stop after the current message (safe from any thread or signal)."""
        self._stop.set()

    def clock(self) -> float:
        """Seconds this daemon has served, across restarts (stream expiry runs on it)."""
        return self._served_before + time.monotonic() - self._started

    def run(self) -> int:
        """Serve until stopped; then checkpoint, close sockets with linger, return 0."""
        self.learner.warm()  # compile before the first message, not during it
        if self.outputs is not None:
            self.outputs.clean()
        ctx = zmq.Context()
        auth = self.config.curve.start(ctx) if self.config.curve else None
        data = self._socket(ctx, zmq.SUB if self.config.subscribe else zmq.PULL,
                            self.config.data)
        control = self._socket(ctx, zmq.ROUTER, self.control_endpoint)
        metrics = self._socket(ctx, zmq.PUB, self.config.metrics) if self.config.metrics else None
        self.bound = {"data": _endpoint(data), "control": _endpoint(control)}
        restrict_ipc(self.bound["control"])
        if metrics is not None:
            self.bound["metrics"] = _endpoint(metrics)
        exporter = None
        if self.config.prometheus is not None:
            from tweenstream.stream.prometheus import Exporter

            exporter = self.exporter = Exporter(self.config.prometheus)
            self.bound["prometheus"] = exporter.url
            exporter.update(self._snapshot())
        self.intake.watch(data)
        self._install_signals()
        poller = zmq.Poller()
        poller.register(control, zmq.POLLIN)
        poller.register(data, zmq.POLLIN)
        if self._control_warning:
            self.log("insecure_control", warning=self._control_warning)
        self.log("serving", version=__version__, **self.bound,
                 network=self.learner.network.to_dict(), mode=self.learner.config.mode,
                 settings=self.config.describe())
        self.ready.set()
        next_metrics = time.monotonic() + self.config.metrics_interval
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(self.config.poll_ms))
                if control in ready:
                    self._drain(control, self._on_control, 64, self.config.drain_seconds)
                if data in ready and not self._stop.is_set():
                    self.intake.polls += 1
                    if self._drain_data(data, 256, self.config.drain_seconds):
                        self.intake.backlogged += 1
                now = time.monotonic()
                self.intake.events()
                self._poll_refinement()
                self._maybe_checkpoint(now)
                self._sweep(now)
                if now >= next_metrics:
                    if metrics is not None:
                        metrics.send_multipart([b"metrics", protocol.pack(self.metrics())])
                    if exporter is not None:
                        exporter.update(self._snapshot())
                    next_metrics = now + self.config.metrics_interval
                self._status_line(now)
        finally:
            if self.config.refinement is not None:
                self.config.refinement.close()  # a job still out is abandoned, not waited on
            poller.unregister(data)
            self.intake.unwatch(data)
            data.close(linger=0)  # stop intake first: queued messages are not ours yet
            if self.store is not None:
                self._checkpoint("shutdown")
            for sock in (control, metrics):
                if sock is not None:
                    sock.close(linger=self.config.linger_ms)
            if exporter is not None:
                exporter.close()
            if auth is not None:
                auth.stop()
            ctx.term()
            self.log("stopped", samples_seen=self.learner.state()["samples_seen"])
        return 0

    def _socket(self, ctx: zmq.Context, kind: int, endpoint: str) -> zmq.Socket:
        sock = ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, self.config.linger_ms)
        if kind in (zmq.PULL, zmq.SUB, zmq.ROUTER):
            self.intake.bound(sock)
        if kind == zmq.SUB:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        if self.config.curve is not None:
            self.config.curve.serve(sock)
        if kind == zmq.SUB:
            sock.connect(endpoint)
        else:
            sock.bind(endpoint)
        return sock

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: self._stop.set())

    def _drain(self, sock: zmq.Socket, handler: Callable[[zmq.Socket, list[Any]], None],
               most: int, seconds: float) -> bool:
        """Handle up to ``most`` messages or ``seconds`` of work; True if more are waiting."""
        deadline = time.monotonic() + seconds
        for _ in range(most):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return False
            try:
                handler(sock, frames)
            except Exception as err:  # a bug must not kill the daemon: count it, log it, go on
                self._reject(ProtocolError("internal_error", repr(err)), "loop")
            if self._stop.is_set() or time.monotonic() > deadline:
                break
        return bool(int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN)

    # --- data ----------------------------------------------------------------------------
    def _drain_data(self, sock: zmq.Socket, most: int, seconds: float) -> bool:
        """Receive up to ``most`` waiting messages and handle them as one batch (``_on_batch``);
        True if more are waiting."""
        deadline = time.monotonic() + seconds
        batch: list[list[Any]] = []
        for _ in range(most):
            try:
                batch.append(sock.recv_multipart(zmq.NOBLOCK, copy=False))
            except zmq.Again:
                break
            if time.monotonic() > deadline:
                break
        try:
            self._on_batch(batch)
        except Exception as err:  # a bug must not kill the daemon: count it, log it, go on
            self._reject(ProtocolError("internal_error", repr(err)), "loop")
        return bool(int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN)

    def _on_batch(self, batch: list[list[Any]]) -> None:
        """Decode every message, check the values of all their rows at once, admit each (seq,
        stream) in order, and learn consecutive learn messages of one stream in one
        ``learn_many`` call. Samples are learned in the order received; a message whose values
        are bad is refused alone and before admission (its seq can be sent again)."""
        msgs: list[protocol.Message] = []
        for frames in batch:
            try:
                msg = protocol.decode_frames([f.buffer for f in frames], self.contract,
                                             self.config.limits)
                if msg.kind not in ("learn", "label"):
                    raise ProtocolError("unknown_kind", f"{msg.kind} belongs on the control "
                                        "socket")
            except ProtocolError as err:
                self._reject(err, "data")
                continue
            msgs.append(msg)
        learn = [m for m in msgs if m.kind == "learn"]
        xb, yb = self._rows(sum(m.rows for m in learn))
        at: dict[int, int] = {}  # id(message) -> its first row in xb / yb
        row = 0
        for m in learn:
            at[id(m)] = row
            np.copyto(xb[row:row + m.rows], m.X)  # type: ignore[arg-type]  # learn: X and Y
            np.copyto(yb[row:row + m.rows], m.Y)  # type: ignore[arg-type]
            row += m.rows
        bad: set[int] = set()
        try:
            protocol.check_values(xb[:row], yb[:row], self.contract)
        except ProtocolError:  # the rare case: find the bad messages one by one
            for m in learn:
                try:
                    protocol.check_values(m.X, m.Y, self.contract)
                except ProtocolError as err:
                    self._reject(err, "data")
                    bad.add(id(m))
        start = stop = 0  # the rows of the group being gathered
        stats: StreamStats | None = None
        sizes: list[int] = []  # rows of each message in the group
        for m in msgs:
            if m.kind == "label":
                self._learn_group(stats, xb[start:stop], yb[start:stop], sizes)
                sizes = []
                self._apply(m)
                continue
            if id(m) in bad:
                continue
            s = self._admit(m)
            if s is None:
                continue
            first = at[id(m)]
            if sizes and (s is not stats or first != stop or stop - start >= MAX_GROUP_ROWS):
                self._learn_group(stats, xb[start:stop], yb[start:stop], sizes)
                sizes = []
            if not sizes:
                start, stats = first, s
            stop = first + m.rows
            sizes.append(m.rows)
        self._learn_group(stats, xb[start:stop], yb[start:stop], sizes)

    def _rows(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The batch buffers (rows of every learn message of one drain), grown as needed."""
        if n > len(self._bx):
            self._bx = np.zeros((n, self._bx.shape[1]), dtype=np.float32)
            self._by = np.zeros((n, *self._by.shape[1:]), dtype=self._by.dtype)
        return self._bx, self._by

    def _stream(self, name: str) -> StreamStats | None:
        stats = self.streams.get(name)
        if stats is None:
            if len(self.streams) >= self.config.max_streams:
                self._sweep(time.monotonic(), force=True)
            if len(self.streams) >= self.config.max_streams:
                self._reject(ProtocolError("too_many_streams", f"{len(self.streams)} streams "
                             f"are active (--max-streams {self.config.max_streams}); idle "
                             f"ones are freed after --stream-ttl {self.config.stream_ttl:g} s"),
                             "data")
                return None
            stats = self.streams[name] = StreamStats(active_at=self.clock())
        return stats

    def _admit(self, msg: protocol.Message) -> StreamStats | None:
        """The stream of a learn / label message if its seq is new (at most once per seq)."""
        stats = self._stream(msg.stream)
        if stats is None:
            return None
        if msg.seq is not None:
            verdict = stats.seq.admit(msg.seq, strict=self.config.strict_order,
                                      max_jump=self.config.max_seq_jump)
            if verdict in ("duplicate", "ahead"):
                self.counters[f"{verdict}s" if verdict == "duplicate" else "ahead"] += 1
                return None
            if verdict == "jump":
                self._reject(ProtocolError("seq_jump", f"stream {msg.stream!r}: seq {msg.seq} "
                             f"jumps more than {self.config.max_seq_jump} past "
                             f"{stats.seq.last}"), "data")
                return None
        stats.active_at = self.clock()  # refused messages do not keep a stream alive
        return stats

    def _learn_group(self, stats: StreamStats | None, X: np.ndarray, Y: np.ndarray,
                     sizes: list[int]) -> None:
        """Learn the rows of admitted messages of one stream (``sizes``: rows per message) in
        one call. If the learner refuses them (nothing was learned: it checks every row first;
        the protocol has checked what it can judge, so this is e.g. a token id out of range),
        learn them message by message, so that only the bad message is refused."""
        if not sizes or stats is None:
            return
        try:
            self._learn(stats, X, Y, len(sizes))
            return
        except ValueError as err:
            if len(sizes) == 1:
                self._reject(ProtocolError("bad_value", str(err)), "data")
                return
        at = 0
        for n in sizes:
            try:
                self._learn(stats, X[at:at + n], Y[at:at + n], 1)
            except ValueError as err:
                self._reject(ProtocolError("bad_value", str(err)), "data")
            at += n

    def _learn(self, stats: StreamStats, xb: np.ndarray, yb: np.ndarray, messages: int) -> None:
        """Learn rows of one stream's messages and account for them; ``ValueError`` (nothing
        learned) if the learner refuses them."""
        before = self.learner.totals()
        self.learner.learn_many(xb, yb)
        after = self.learner.totals()
        n = len(xb)
        scored = after[0] - before[0]
        stats.record(scored, after[1] - before[1], after[2] - before[2])
        if self.config.refinement is not None and scored:
            started = self.config.refinement.observe(self.learner, scored,
                                                     (after[2] - before[2]) / scored,
                                                     (after[1] - before[1]) / scored)
            if started and started["ok"]:
                self.log("refine_started", **started)
        self.counters["samples"] += n
        self.counters["messages"] += messages
        self._since_checkpoint += n

    def _apply(self, msg: protocol.Message) -> None:
        """Learn from one decoded label or learn_predict message (a learn_predict's values were
        checked by ``decode``; a label's are checked here, before its seq is admitted)."""
        if msg.kind == "label":
            try:
                protocol.check_values(None, msg.Y, self.contract)
            except ProtocolError as err:
                self._reject(err, "data")
                return
        stats = self._admit(msg)
        if stats is None:
            return
        X: np.ndarray | None = msg.X
        Y: np.ndarray | None = msg.Y
        if msg.kind == "label" and Y is not None:
            X, found = self.labels.take(msg.ids or ())
            Y = Y[np.asarray(found, dtype=bool)]
            self.counters["labels_unmatched"] += found.count(False)
        if X is None or Y is None or len(X) == 0:
            return
        xb, yb = self._buffers(len(X))
        np.copyto(xb, X)
        np.copyto(yb, Y)
        self._learn_group(stats, xb, yb, [len(X)])

    def _buffers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Writable buffers for n rows; they grow to the largest message seen, never shrink."""
        if n > len(self._xbuf):
            self._xbuf = np.zeros((n, self._xbuf.shape[1]), dtype=np.float32)
            self._ybuf = np.zeros((n, *self._ybuf.shape[1:]), dtype=self._ybuf.dtype)
        return self._xbuf[:n], self._ybuf[:n]

    def _reject(self, err: ProtocolError, where: str) -> None:
        self.rejected[err.code] += 1
        count = self.rejected[err.code]
        if count <= 10 or count % 1000 == 0:  # one line per event, not a flood per message
            self.log("rejected", socket=where, code=err.code, reason=err.reason, count=count)

    def _sweep(self, now: float, force: bool = False) -> None:
        """Free streams idle longer than ``stream_ttl`` (at most once a second unless forced)."""
        if not force and now < self._next_sweep:
            return
        self._next_sweep = now + 1.0
        oldest = self.clock() - self.config.stream_ttl
        idle = [name for name, s in self.streams.items() if s.active_at < oldest]
        for name in idle:
            del self.streams[name]
        if idle:
            self.counters["streams_expired"] += len(idle)
            self.log("streams_expired", count=len(idle), first=idle[0])

    # --- control -------------------------------------------------------------------------
    def _on_control(self, sock: zmq.Socket, frames: list[Any]) -> None:
        """Exactly one reply per request, whatever the request holds."""
        start = time.perf_counter()
        envelope, body = protocol.split_envelope([f.buffer for f in frames])
        self._timed = False
        try:
            self._admin = self.config.curve is None or self.config.curve.is_admin(
                _user_id(frames[-1]))
            reply = self._control_reply(body)
        except Exception as err:  # a bug must not cost the reply: answer it, count it
            self._reject(ProtocolError("internal_error", repr(err)), "control")
            reply = protocol.error_reply("internal_error", f"{type(err).__name__} (logged)")
        sock.send_multipart([*envelope, *reply])
        if self._timed:  # a prediction: from receive to send
            seconds = time.perf_counter() - start
            self.latency.record(seconds)
            if self.exporter is not None:
                self.exporter.observe_predict(seconds)

    def _control_reply(self, body: list[Any]) -> list[bytes]:
        if not body:
            self._reject(ProtocolError("truncated", "empty control message"), "control")
            return protocol.error_reply("truncated", "empty control message")
        try:
            first = protocol.unpack(body[0], self.config.limits.max_header_bytes)
        except ProtocolError as err:
            self._reject(err, "control")
            return protocol.error_reply(err.code, err.reason)
        if "cmd" in first:
            return [protocol.pack(self._command(first))]
        self._timed = True
        return self._predict(body)

    def _command(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        handler = self._commands.get(cmd) if isinstance(cmd, str) else None
        if handler is None:
            shown = repr(cmd)[:80]
            return _fail("unknown_command", f"unknown command {shown}; known: "
                         f"{', '.join(self._commands)}")
        if cmd not in READ and not self._admin:  # anything not known as read is admin
            return _fail("forbidden", f"{cmd!r} is an admin command and this client's key is "
                         "not in --admin-keys")
        try:
            return handler(request)
        except (ValueError, TypeError, OSError) as err:
            return _fail("bad_request", str(err))

    def _predict(self, body: list[Any]) -> list[bytes]:
        try:
            msg = protocol.decode(body, self.contract, self.config.limits)
            if msg.kind not in ("predict", "learn_predict"):
                raise ProtocolError("unknown_kind", f"{msg.kind} belongs on the data socket")
        except ProtocolError as err:
            self._reject(err, "control")
            return protocol.error_reply(err.code, err.reason)
        if msg.X is None:
            raise RuntimeError("decode returned a predict message without X")
        xb, _ = self._buffers(len(msg.X))
        np.copyto(xb, msg.X)
        try:
            out = (self.learner.predict_proba_many(xb) if self.contract.classification
                   else self.learner.predict_many(xb).reshape(len(xb), -1))
        except (ValueError, FloatingPointError) as err:  # e.g. token ids out of range
            self._reject(ProtocolError("bad_value", str(err)), "control")
            return protocol.error_reply("bad_value", str(err))
        if msg.kind == "predict" and msg.ids is not None:
            self.labels.put(msg.ids, xb)
        self.counters["predictions"] += len(xb)
        reply = protocol.prediction_reply(out)
        if msg.kind == "learn_predict":
            self._apply(msg)
        return reply

    def _recent_streams(self) -> dict[str, Any]:
        """The ``status_streams`` most recently active streams (status stays small)."""
        shown = sorted(self.streams.items(), key=lambda kv: kv[1].active_at,
                       reverse=True)[:self.config.status_streams]
        return {k: v.summary(self.metric) for k, v in shown}

    def _cmd_status(self, request: dict[str, Any]) -> dict[str, Any]:
        st = self.learner.state()
        keys = ("mode", "phase", "samples_seen", "updates", "adaptive_rate", "explosions",
                "rollbacks", "rejected", "switched_at", f"running_{self.metric}", "running_loss")
        return {"ok": True, "code": "ok", **{k: st[k] for k in keys},
                "uptime_s": round(time.monotonic() - self._started, 3),
                "messages": self.counters["messages"],
                "counters": dict(self.counters),
                "rejected_messages": dict(self.rejected),
                "streams": self._recent_streams(), "streams_total": len(self.streams),
                "intake": self.intake.summary(), "limits": self._limits(),
                "exports": self.exports.summary()[-1:] if self.exports else [],
                "refinement": self.config.refinement.summary() if self.config.refinement
                else None, "predict_latency": self.latency.summary(),
                "settings": asdict(self.learner.config), "serve": self.config.describe(),
                "endpoints": dict(self.bound),
                "checkpoint_age_s": self._checkpoint_age()}

    def _limits(self) -> dict[str, Any]:
        c = self.config
        return {"max_streams": c.max_streams, "stream_ttl": c.stream_ttl,
                "max_seq_jump": c.max_seq_jump, "strict_order": c.strict_order,
                "label_capacity": c.label_capacity, "checkpoint_budget": c.checkpoint_budget,
                "max_rows": c.limits.max_rows, "status_streams": c.status_streams}

    def _cmd_metrics(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "code": "ok", **self.metrics()}

    def metrics(self) -> dict[str, Any]:
        """Everything measured: learner state, recent streams, counters, label store, intake."""
        return {"time": time.time(), "learner": self.learner.state(),
                "streams": self._recent_streams(), "streams_total": len(self.streams),
                "counters": dict(self.counters), "rejected_messages": dict(self.rejected),
                "labels": self.labels.stats(), "intake": self.intake.summary(),
                "refinement": self.config.refinement.summary() if self.config.refinement
                else None, "predict_latency": self.latency.summary()}

    def _snapshot(self) -> dict[str, Any]:
        """What the Prometheus endpoint reads: ``metrics()`` and the checkpoint's age."""
        snap = self.metrics()
        snap["checkpoint_age_s"] = self._checkpoint_age()
        return snap

    def _checkpoint_age(self) -> float | None:
        """Seconds since the last checkpoint (None without a checkpoint folder)."""
        if self.store is None:
            return None
        return round(time.monotonic() - self._last_checkpoint, 3)

    def _cmd_streams(self, request: dict[str, Any]) -> dict[str, Any]:
        """A page of streams, by name: ``offset`` and ``limit`` (at most 1,000)."""
        offset, limit = request.get("offset", 0), request.get("limit", _PAGE)
        if type(offset) is not int or type(limit) is not int or offset < 0 \
                or not 0 < limit <= _PAGE:
            raise ValueError(f"offset must be an int >= 0 and limit an int in 1..{_PAGE}")
        names = sorted(self.streams)[offset:offset + limit]
        return {"ok": True, "code": "ok", "total": len(self.streams), "offset": offset,
                "streams": {k: self.streams[k].summary(self.metric) for k in names}}

    def _cmd_acked(self, request: dict[str, Any]) -> dict[str, Any]:
        """Where a producer must resend from: what was applied, and what a checkpoint holds."""
        name = request.get("stream", "default")
        if not isinstance(name, str):
            raise ValueError("stream must be a string")
        stats = self.streams.get(name)
        if stats is None:
            return {"ok": True, "code": "ok", "stream": name, "known": False, "last_seq": -1,
                    "applied_through": -1, "durable_through": -1}
        return {"ok": True, "code": "ok", "stream": name, "known": True,
                "last_seq": stats.seq.last, "applied_through": stats.seq.applied_through(),
                "durable_through": stats.durable if self.store is not None
                else stats.seq.applied_through()}

    def _cmd_job(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self.exports.get(request.get("job")) if self.exports else None
        if job is None:
            return _fail("unknown_job", f"no export job {request.get('job')!r}")
        return {"ok": True, "code": "ok", **job}

    def _cmd_checkpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.store is None:
            return _fail("no_checkpoint_dir", "the daemon was started without --checkpoint-dir")
        path = self._checkpoint("command")
        if path is None:
            return _fail("checkpoint_too_large", "over --checkpoint-budget; see the log")
        return {"ok": True, "code": "ok", "path": str(path)}

    def _cmd_configure(self, request: dict[str, Any]) -> dict[str, Any]:
        """Change learner settings (``settings``: a map of TweenConfig fields) of the running
        model, with the checks of ``Learner.configure``; everything learned is kept."""
        settings = request.get("settings")
        if not isinstance(settings, dict) or not settings \
                or not all(isinstance(k, str) for k in settings):
            return _fail("bad_request", "settings must be a non-empty map of TweenConfig "
                         "fields to values, e.g. {\"learning_rate\": 0.01}")
        try:
            self.learner.configure(**settings)
        except (TypeError, ValueError) as err:
            return _fail("bad_request", str(err))
        self.log("configured", settings=settings)
        return {"ok": True, "code": "ok", "settings": asdict(self.learner.config)}

    def _cmd_set_phase(self, request: dict[str, Any]) -> dict[str, Any]:
        phase = request.get("phase")
        if phase not in PHASES:
            return _fail("bad_request", f"phase must be one of {', '.join(PHASES)}, "
                         f"found {phase!r}")
        self.learner.set_phase(phase)
        self.log("phase", phase=phase)
        return {"ok": True, "code": "ok", "phase": self.learner.state()["phase"]}

    def _cmd_save(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.outputs is None:
            return _fail("no_output_dir", "the daemon was started without --output-dir or "
                         "--checkpoint-dir")
        path = self.outputs.path(request.get("name"), ".tsm", request.get("overwrite") is True)
        self.learner.save(path)
        self.log("saved", path=str(path))
        return {"ok": True, "code": "ok", "name": path.name, "path": str(path)}

    def _cmd_export(self, request: dict[str, Any]) -> dict[str, Any]:
        """Start an ONNX export (with its parity check, and an optional push to a configured
        edge target) off the loop; ``job`` tells how it ended."""
        if self.exports is None:
            return _fail("no_output_dir", "the daemon was started without --output-dir or "
                         "--checkpoint-dir")
        try:
            job = self.exports.start(self.learner, request.get("name"), request.get("push"),
                                     request.get("overwrite") is True)
        except RuntimeError as err:
            return _fail("busy", str(err))
        self.log("export_started", job=job, name=request.get("name"), push=request.get("push"))
        return {"ok": True, "code": "ok", "job": job, "state": "running"}

    def _cmd_refine(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.config.refinement is None:
            return _fail("no_refinement", "the daemon was started without refinement settings")
        reply = self.config.refinement.start(self.learner, "command")
        if reply["ok"]:
            self.log("refine_started", **reply)
        return reply

    def _cmd_reset_stream(self, request: dict[str, Any]) -> dict[str, Any]:
        """Forget a stream's sequence state and metrics (e.g. after its producer restarted)."""
        name = request.get("stream")
        if not isinstance(name, str) or name not in self.streams:
            return _fail("unknown_stream", f"no stream {name!r}")
        del self.streams[name]
        self.log("stream_reset", stream=name)
        return {"ok": True, "code": "ok", "stream": name}

    def _poll_refinement(self) -> None:
        if self.config.refinement is None:
            return
        try:
            event = self.config.refinement.poll(self.learner)
        except Exception as err:
            self.config.refinement.failed += 1
            event = {"event": "refine_failed", "reason": f"{type(err).__name__}: {err}"}
        if event is not None:
            self.log(event["event"], **{k: v for k, v in event.items() if k != "event"})

    def _cmd_shutdown(self, request: dict[str, Any]) -> dict[str, Any]:
        self.stop()
        return {"ok": True, "code": "ok", "stopping": True}

    # --- checkpoints and state ---------------------------------------------------------------
    def _maybe_checkpoint(self, now: float) -> None:
        if self.store is None or self._since_checkpoint == 0:
            return
        if (self._since_checkpoint >= self.config.checkpoint_every
                or now - self._last_checkpoint >= self.config.checkpoint_interval):
            self._checkpoint("periodic")

    def _checkpoint(self, why: str) -> Path | None:
        if self.store is None:
            raise RuntimeError("no checkpoint store")
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        extra, arrays = state_parts(self.counters, self.rejected, self.clock(), self.streams,
                                    self.labels)
        try:
            path = self.store.write(self.learner, extra, arrays)
        except CheckpointTooLarge as err:
            self.counters["checkpoints_refused"] += 1
            self.log("checkpoint_refused", why=why, reason=str(err))
            return None
        for stats in self.streams.values():
            stats.durable = stats.seq.applied_through()
        self.log("checkpoint", path=str(path), why=why,
                 samples_seen=self.learner.state()["samples_seen"])
        return path

    # --- output ----------------------------------------------------------------------------
    def log(self, event: str, **fields: Any) -> None:
        """One structured (JSON) line per event."""
        line = json.dumps({"ts": round(time.time(), 3), "event": event, **fields}, default=str)
        print(line, file=self._log_file, flush=True)

    _last_status = 0.0

    def _status_line(self, now: float) -> None:
        if not sys.stderr.isatty() or now - self._last_status < 1.0:
            return
        self._last_status = now
        st = self.learner.state()
        sys.stderr.write(f"\r{st['samples_seen']:>12,} samples  {self.metric} "
                         f"{st[f'running_{self.metric}']:.3f}  phase {st['phase']:<8} "
                         f"explosions {st['explosions']}  rejected {sum(self.rejected.values())} ")
        sys.stderr.flush()


def _user_id(frame: Any) -> str | None:
    try:
        value = frame.get("User-Id")
    except (zmq.ZMQError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _endpoint(sock: zmq.Socket) -> str:
    value = sock.getsockopt(zmq.LAST_ENDPOINT)
    return value.decode() if isinstance(value, bytes) else str(value)


def _fail(code: str, reason: str) -> dict[str, Any]:
    return {"ok": False, "code": code, "reason": reason}
