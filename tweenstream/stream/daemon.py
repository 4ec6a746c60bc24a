"""The streaming daemon: learns test-then-train from ZeroMQ streams, never dies on bad input.

Sockets (endpoints from ``ServeConfig``):
- data (PULL, or SUB): ``learn`` and ``label`` messages (docs/protocol.md);
- control (ROUTER): commands ``status``, ``metrics``, ``checkpoint``, ``set-phase``, ``save``,
  ``shutdown``, and ``predict`` / ``learn_predict`` messages, which get predictions back;
- metrics (PUB, optional): a ``metrics`` frame and a msgpack map every ``metrics_interval`` s.

The loop polls with a timeout and checks a stop flag; signals only set that flag. Every failure
is counted and answered (or logged) with a reason code, and the loop goes on.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import zmq

from tweenstream import __version__
from tweenstream.runtime.learner import Learner
from tweenstream.stream import protocol
from tweenstream.stream.checkpoint import CheckpointStore
from tweenstream.stream.labels import DelayedLabels
from tweenstream.stream.protocol import Contract, Limits, ProtocolError
from tweenstream.stream.refinement import Refinement
from tweenstream.stream.security import Curve
from tweenstream.stream.streams import StreamStats

PHASES = ("tween", "backprop", "tween-heuristic", "hybrid")


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``tweenstream serve`` is told by its flags."""

    data: str = "tcp://127.0.0.1:5555"
    control: str = "tcp://127.0.0.1:5556"
    metrics: str | None = None
    subscribe: bool = False  # data socket is SUB instead of PULL
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100_000  # samples
    checkpoint_interval: float = 60.0  # seconds
    keep_checkpoints: int = 3
    rcvhwm: int = 1000  # messages queued on the data socket before producers block or drop
    metrics_interval: float = 1.0
    label_capacity: int = 10_000
    label_max_age: float = 600.0
    max_streams: int = 1024
    poll_ms: int = 50
    linger_ms: int = 1000
    curve: Curve | None = None
    limits: Limits = field(default_factory=Limits)
    refinement: Refinement | None = None  # backprop refinement (needs a learner reservoir)


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
                 state: dict[str, Any] | None = None) -> None:
        self.learner = learner
        self.config = config
        net = learner.network
        self.contract = Contract(net.n_inputs, net.n_outputs, net.task == "classification")
        self.metric = "accuracy" if self.contract.classification else "mae"
        self.streams: dict[str, StreamStats] = {}
        self.rejected: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.labels = DelayedLabels(config.label_capacity, net.n_inputs, config.label_max_age)
        self.store = CheckpointStore(config.checkpoint_dir, config.keep_checkpoints) \
            if config.checkpoint_dir else None
        self._log_file = log if log is not None else sys.stderr
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the sockets are bound
        self.bound: dict[str, str] = {}  # actual endpoints (a tcp port 0 / * becomes a number)
        self._xbuf = np.zeros((0, net.n_inputs), dtype=np.float32)
        self._ybuf = np.zeros((0,) if self.contract.classification else (0, net.n_outputs),
                              dtype=np.int64 if self.contract.classification else np.float32)
        self._started = time.monotonic()
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._commands: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "status": self._cmd_status, "metrics": self._cmd_metrics,
            "checkpoint": self._cmd_checkpoint, "set-phase": self._cmd_set_phase,
            "save": self._cmd_save, "export": self._cmd_export, "shutdown": self._cmd_shutdown,
            "refine": self._cmd_refine,
        }
        if state:
            self._restore(state)

    # --- lifecycle ------------------------------------------------------------------------
    @classmethod
    def resume(cls, fallback: Callable[[], Learner], config: ServeConfig, *,
               log: TextIO | None = None) -> Daemon:
        """A daemon from the newest valid checkpoint in ``config.checkpoint_dir``, else fresh."""
        learner, state, problems = (CheckpointStore(config.checkpoint_dir,
                                                    config.keep_checkpoints).latest()
                                    if config.checkpoint_dir else (None, {}, []))
        daemon = cls(learner or fallback(), config, log=log, state=state)
        for problem in problems:
            daemon.log("checkpoint_corrupt", reason=problem)
        if learner is not None:
            daemon.log("resumed", samples_seen=learner.state()["samples_seen"],
                       streams={k: v.seq.last for k, v in daemon.streams.items()})
        return daemon

    def stop(self) -> None:
        """Ask the loop to stop after the current message (safe from any thread or signal)."""
        self._stop.set()

    def run(self) -> int:
        """Serve until stopped; then checkpoint, close sockets with linger, return 0."""
        self.learner.warm()  # compile before the first message, not during it
        ctx = zmq.Context()
        auth = self.config.curve.start(ctx) if self.config.curve else None
        data = self._socket(ctx, zmq.SUB if self.config.subscribe else zmq.PULL,
                            self.config.data)
        control = self._socket(ctx, zmq.ROUTER, self.config.control)
        metrics = self._socket(ctx, zmq.PUB, self.config.metrics) if self.config.metrics else None
        self.bound = {"data": _endpoint(data), "control": _endpoint(control)}
        if metrics is not None:
            self.bound["metrics"] = _endpoint(metrics)
        self._install_signals()
        poller = zmq.Poller()
        poller.register(control, zmq.POLLIN)
        poller.register(data, zmq.POLLIN)
        self.log("serving", version=__version__, **self.bound,
                 network=self.learner.network.to_dict(), mode=self.learner.config.mode)
        self.ready.set()
        next_metrics = time.monotonic() + self.config.metrics_interval
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(self.config.poll_ms))
                if control in ready:
                    self._drain(control, self._on_control, 64)
                if data in ready and not self._stop.is_set():
                    self._drain(data, self._on_data, 16)
                now = time.monotonic()
                self._poll_refinement()
                self._maybe_checkpoint(now)
                if metrics is not None and now >= next_metrics:
                    metrics.send_multipart([b"metrics", protocol.pack(self.metrics())])
                    next_metrics = now + self.config.metrics_interval
                self._status_line(now)
        finally:
            if self.config.refinement is not None:
                self.config.refinement.close()  # a job still out is abandoned, not waited on
            poller.unregister(data)
            data.close(linger=0)  # stop intake first: queued messages are not ours yet
            if self.store is not None:
                path = self.store.write(self.learner, self._state())
                self.log("checkpoint", path=str(path), why="shutdown")
            for sock in (control, metrics):
                if sock is not None:
                    sock.close(linger=self.config.linger_ms)
            if auth is not None:
                auth.stop()
            ctx.term()
            self.log("stopped", samples_seen=self.learner.state()["samples_seen"])
        return 0

    def _socket(self, ctx: zmq.Context, kind: int, endpoint: str) -> zmq.Socket:
        sock = ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, self.config.linger_ms)
        if kind in (zmq.PULL, zmq.SUB):
            sock.setsockopt(zmq.RCVHWM, self.config.rcvhwm)
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
               most: int) -> None:
        for _ in range(most):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                handler(sock, frames)
            except Exception as err:  # a bug must not kill the daemon: count it, log it, go on
                self.rejected["internal_error"] += 1
                self.log("internal_error", error=repr(err))
            if self._stop.is_set():
                return

    # --- data ----------------------------------------------------------------------------
    def _on_data(self, sock: zmq.Socket, frames: list[Any]) -> None:
        try:
            msg = protocol.decode([f.buffer for f in frames], self.contract, self.config.limits)
            if msg.kind not in ("learn", "label"):
                raise ProtocolError("unknown_kind", f"{msg.kind} belongs on the control socket")
        except ProtocolError as err:
            self._reject(err, "data")
            return
        self._apply(msg)

    def _apply(self, msg: protocol.Message) -> None:
        """Learn from a decoded learn / label / learn_predict message, at most once per seq."""
        stats = self.streams.get(msg.stream)
        if stats is None:
            if len(self.streams) >= self.config.max_streams:
                self._reject(ProtocolError("bad_header", "too many streams"), "data")
                return
            stats = self.streams[msg.stream] = StreamStats()
        if msg.seq is not None and stats.seq.admit(msg.seq) == "duplicate":
            self.counters["duplicates"] += 1
            return
        X: np.ndarray | None = msg.X
        Y: np.ndarray | None = msg.Y
        if msg.kind == "label" and Y is not None:
            X, found = self.labels.take(msg.ids or ())
            Y = Y[np.asarray(found, dtype=bool)]
            self.counters["labels_unmatched"] += found.count(False)
        if X is None or Y is None or len(X) == 0:
            return
        n = len(X)
        xb, yb = self._buffers(n)
        np.copyto(xb, X)
        np.copyto(yb, Y)
        before = self.learner.totals()
        try:
            self.learner.learn_many(xb, yb)
        except ValueError as err:  # values the protocol cannot judge, e.g. bad token ids
            self._reject(ProtocolError("bad_value", str(err)), "data")
            return
        after = self.learner.totals()
        scored = after[0] - before[0]
        stats.record(scored, after[1] - before[1], after[2] - before[2])
        if self.config.refinement is not None and scored:
            started = self.config.refinement.observe(self.learner, scored,
                                                     (after[2] - before[2]) / scored,
                                                     (after[1] - before[1]) / scored)
            if started and started["ok"]:
                self.log("refine_started", **started)
        self.counters["samples"] += n
        self.counters["messages"] += 1
        self._since_checkpoint += n

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

    # --- control -------------------------------------------------------------------------
    def _on_control(self, sock: zmq.Socket, frames: list[Any]) -> None:
        envelope, body = protocol.split_envelope([f.buffer for f in frames])
        if not body:
            self._reject(ProtocolError("truncated", "empty control message"), "control")
            return
        try:
            first = protocol.unpack(body[0], self.config.limits.max_header_bytes)
        except ProtocolError as err:
            self._reject(err, "control")
            sock.send_multipart([*envelope, *protocol.error_reply(err.code, err.reason)])
            return
        if "cmd" in first:
            reply = self._command(first)
            sock.send_multipart([*envelope, protocol.pack(reply)])
        else:
            sock.send_multipart([*envelope, *self._predict(body)])

    def _command(self, request: dict[str, Any]) -> dict[str, Any]:
        handler = self._commands.get(request.get("cmd"))  # type: ignore[arg-type]
        if handler is None:
            return _fail("unknown_command", f"unknown command {request.get('cmd')!r}; "
                         f"known: {', '.join(self._commands)}")
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
        assert msg.X is not None  # decode guarantees X for predict kinds
        xb, _ = self._buffers(len(msg.X))
        np.copyto(xb, msg.X)
        out = (self.learner.predict_proba_many(xb) if self.contract.classification
               else self.learner.predict_many(xb).reshape(len(xb), -1))
        if msg.kind == "predict" and msg.ids is not None:
            self.labels.put(msg.ids, xb)
        self.counters["predictions"] += len(xb)
        reply = protocol.prediction_reply(out)
        if msg.kind == "learn_predict":
            self._apply(msg)
        return reply

    def _cmd_status(self, request: dict[str, Any]) -> dict[str, Any]:
        st = self.learner.state()
        keys = ("mode", "phase", "samples_seen", "updates", "adaptive_rate", "explosions",
                "rollbacks", "rejected", "switched_at", f"running_{self.metric}", "running_loss")
        return {"ok": True, "code": "ok", **{k: st[k] for k in keys},
                "uptime_s": round(time.monotonic() - self._started, 3),
                "messages": self.counters["messages"],
                "rejected_messages": dict(self.rejected),
                "streams": {k: v.summary(self.metric) for k, v in self.streams.items()},
                "refinement": self.config.refinement.summary() if self.config.refinement
                else None}

    def _cmd_metrics(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "code": "ok", **self.metrics()}

    def metrics(self) -> dict[str, Any]:
        """Everything measured: learner state, per-stream metrics, counters, label store."""
        return {"time": time.time(), "learner": self.learner.state(),
                "streams": {k: v.summary(self.metric) for k, v in self.streams.items()},
                "counters": dict(self.counters), "rejected_messages": dict(self.rejected),
                "labels": self.labels.stats(),
                "refinement": self.config.refinement.summary() if self.config.refinement
                else None}

    def _cmd_checkpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.store is None:
            return _fail("no_checkpoint_dir", "the daemon was started without --checkpoint-dir")
        return {"ok": True, "code": "ok", "path": str(self._checkpoint("command"))}

    def _cmd_set_phase(self, request: dict[str, Any]) -> dict[str, Any]:
        phase = request.get("phase")
        if phase not in PHASES:
            return _fail("bad_request", f"phase must be one of {', '.join(PHASES)}, "
                         f"found {phase!r}")
        self.learner.set_phase(phase)
        self.log("phase", phase=phase)
        return {"ok": True, "code": "ok", "phase": self.learner.state()["phase"]}

    def _cmd_save(self, request: dict[str, Any]) -> dict[str, Any]:
        path = request.get("path")
        if not isinstance(path, str) or not path:
            return _fail("bad_request", "save needs a 'path' string")
        self.learner.save(Path(path))
        return {"ok": True, "code": "ok", "path": path}

    def _cmd_export(self, request: dict[str, Any]) -> dict[str, Any]:
        """Export ONNX (with its parity check) to ``path``; with ``push``, send it to an edge
        predictor's endpoint, which checks it and swaps it in (or keeps its old model)."""
        from tweenstream.export.builder import ExportError, export
        from tweenstream.stream.client import Control

        path, push = request.get("path"), request.get("push")
        if not isinstance(path, str) or not path:
            return _fail("bad_request", "export needs a 'path' string")
        if push is not None and not isinstance(push, str):
            return _fail("bad_request", "'push' must be an endpoint string")
        try:
            report = export(self.learner, path)
        except ExportError as err:
            return _fail("parity", str(err))
        reply: dict[str, Any] = {"ok": True, "code": "ok", "path": path,
                                 "parity_max_abs": report["parity"]["max_abs"],
                                 "weights_sha256": report["weights_sha256"]}
        if push:
            with Control(push, timeout=float(request.get("timeout", 5.0)), retries=1) as edge:
                try:
                    answer = edge.request([protocol.pack({"cmd": "swap"}),
                                           Path(path).read_bytes()], "swap")
                    reply["pushed"] = protocol.unpack(answer[0])
                except TimeoutError as err:
                    reply["pushed"] = _fail("timeout", str(err))
            reply["ok"] = bool(reply["pushed"].get("ok"))
            reply["code"] = "ok" if reply["ok"] else "push_failed"
        self.log("export", path=path, push=push, ok=reply["ok"])
        return reply

    def _cmd_refine(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.config.refinement is None:
            return _fail("no_refinement", "the daemon was started without refinement settings")
        reply = self.config.refinement.start(self.learner, "command")
        if reply["ok"]:
            self.log("refine_started", **reply)
        return reply

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

    def _checkpoint(self, why: str) -> Path:
        assert self.store is not None
        path = self.store.write(self.learner, self._state())
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self.log("checkpoint", path=str(path), why=why,
                 samples_seen=self.learner.state()["samples_seen"])
        return path

    def _state(self) -> dict[str, Any]:
        return {"version": 1, "streams": {k: v.to_dict() for k, v in self.streams.items()},
                "counters": dict(self.counters), "rejected": dict(self.rejected)}

    def _restore(self, state: dict[str, Any]) -> None:
        self.streams = {k: StreamStats.from_dict(v) for k, v in state.get("streams", {}).items()}
        self.counters.update(state.get("counters", {}))
        self.rejected.update(state.get("rejected", {}))

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


def _endpoint(sock: zmq.Socket) -> str:
    value = sock.getsockopt(zmq.LAST_ENDPOINT)
    return value.decode() if isinstance(value, bytes) else str(value)


def _fail(code: str, reason: str) -> dict[str, Any]:
    return {"ok": False, "code": code, "reason": reason}
