"""``tweenstream edge``: an EdgePredictor behind a ROUTER socket, speaking the daemon's protocol.

Requests: ``predict`` messages (docs/protocol.md) get predictions; commands ``status``,
``swap`` (a model as a second frame, or ``path``) and ``shutdown`` get ``{ok, code, ...}``.
With ``watch`` the server also swaps in the file at that path whenever it changes (checked like
any other candidate). Signals only set the stop flag; the loop polls with a timeout.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import zmq

from tweenstream.edge.predictor import EdgePredictor, PredictError
from tweenstream.files import write_atomic
from tweenstream.latency import LatencyWindow
from tweenstream.stream import protocol


class EdgeServer:
    """Serve ``predictor`` on ``endpoint`` until ``shutdown`` or a signal."""

    def __init__(self, predictor: EdgePredictor, endpoint: str, *, watch: Path | None = None,
                 poll_ms: int = 50, log: TextIO | None = None,
                 state_dir: Path | None = None) -> None:
        self.predictor = predictor
        self.endpoint = endpoint
        self.watch = watch
        self.state_dir = state_dir
        self.poll_ms = poll_ms
        self._log = log if log is not None else sys.stderr
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.bound = ""
        self._seen = self._stamp()
        self.latency = LatencyWindow()  # predict requests, from receive to send
        self._timed = False
        c = predictor.contract
        self._contract = protocol.Contract(c.n_inputs, c.n_outputs, c.task == "classification")

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.watch.stat() if self.watch else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size) if st else None

    def log(self, event: str, **fields: Any) -> None:
        print(json.dumps({"ts": round(time.time(), 3), "event": event, **fields}, default=str),
              file=self._log, flush=True)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.bind(self.endpoint)
        self.bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda signum, frame: self._stop.set())
        self.log("edge_serving", endpoint=self.bound, model=self.predictor.served.description)
        self._keep_last_good()
        self.ready.set()
        try:
            while not self._stop.is_set():
                if sock.poll(self.poll_ms, zmq.POLLIN):
                    for _ in range(64):
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        start = time.perf_counter()
                        envelope, body = protocol.split_envelope([f.buffer for f in frames])
                        reply = self._handle(body)
                        sock.send_multipart([*envelope, *reply])
                        if self._timed:  # a prediction: from receive to send
                            self.latency.record(time.perf_counter() - start)
                self._check_watch()
        finally:
            sock.close(linger=1000)
            ctx.term()
            self.log("edge_stopped", requests=self.predictor.requests)
        return 0

    def _handle(self, body: list[Any]) -> list[bytes]:
        self._timed = False
        if not body:
            return protocol.error_reply("truncated", "empty message")
        try:
            first = protocol.unpack(body[0])
        except protocol.ProtocolError as err:
            return protocol.error_reply(err.code, err.reason)
        if "cmd" not in first:
            return self._predict(body)
        cmd = first["cmd"]
        if cmd == "status":  # latency: whole requests, receive to send
            return [protocol.pack({**self.predictor.status(), "latency": self.latency.summary()})]
        if cmd == "shutdown":
            self.stop()
            return [protocol.pack({"ok": True, "code": "ok", "stopping": True})]
        if cmd == "swap":
            return [protocol.pack(self._swap(first, body[1:]))]
        return protocol.error_reply("unknown_command", f"unknown command {cmd!r}; known: "
                                    "status, swap, shutdown")

    def _predict(self, body: list[Any]) -> list[bytes]:
        self._timed = True
        try:
            msg = protocol.decode(body, self._contract)
            if msg.kind != "predict":
                raise protocol.ProtocolError("unknown_kind", "an edge predictor only predicts")
        except protocol.ProtocolError as err:
            return protocol.error_reply(err.code, err.reason)
        try:
            return protocol.prediction_reply(self.predictor.predict(np.array(msg.X)))
        except PredictError as err:
            return protocol.error_reply(err.code, err.reason)

    def _swap(self, request: dict[str, Any], frames: list[Any]) -> dict[str, Any]:
        if frames:
            data, source = bytes(frames[0]), "pushed"
        elif isinstance(request.get("path"), str):
            try:
                data, source = Path(request["path"]).read_bytes(), request["path"]
            except OSError as err:
                return {"ok": False, "code": "io_error", "reason": str(err)}
        else:
            return {"ok": False, "code": "bad_request", "reason": "swap needs a model frame or "
                    "a 'path'"}
        reply = self.predictor.swap(data, source)
        self.log("swap" if reply["ok"] else "swap_rejected", source=source,
                 **{k: v for k, v in reply.items() if k in ("code", "reason")})
        if reply["ok"]:
            self._keep_last_good()
        return reply

    def _keep_last_good(self) -> None:
        """Write the served model to the state folder (atomically), for the next start."""
        if self.state_dir is None:
            return
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(last_good(self.state_dir), self.predictor.served.data)
        except OSError as err:  # a full disk must not stop serving
            self.log("last_good_not_written", reason=str(err))

    def _check_watch(self) -> None:
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return
        self._seen = stamp
        try:
            data = self.watch.read_bytes()  # type: ignore[union-attr]
        except OSError as err:
            self.log("swap_rejected", source=str(self.watch), code="io_error", reason=str(err))
            return
        self._swap({}, [data])


def last_good(state_dir: Path) -> Path:
    """Where an edge keeps the last model that passed every check."""
    return Path(state_dir) / "last-good.onnx"


def add_edge(sub: Any) -> None:
    p = sub.add_parser("edge", help="serve an exported ONNX model (onnxruntime, no numba)")
    p.add_argument("model", type=Path)
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5557")
    p.add_argument("--watch", type=Path, help="swap in this file whenever it changes")
    p.add_argument("--log", type=Path, help="write the JSON event log here (default stderr)")
    p.add_argument("--state-dir", type=Path,
                   help="keep the last model that passed every check here, and serve it when "
                        "MODEL is refused at start (default: .edge-state beside MODEL)")


def run_edge(args: Any) -> int:
    from tweenstream.edge.predictor import SwapRejected

    state = getattr(args, "state_dir", None) or Path(args.model).parent / ".edge-state"
    try:
        predictor = EdgePredictor.from_file(args.model)
    except (SwapRejected, OSError) as err:
        try:  # the watched file may hold a model the running edge refused: keep serving
            predictor = EdgePredictor.from_file(last_good(state))
        except (SwapRejected, OSError):
            print(f"tweenstream edge: {args.model}: {err}", file=sys.stderr)
            return 2
        print(f"tweenstream edge: {args.model}: {err}; serving the last good model "
              f"{last_good(state)}", file=sys.stderr)
    log = open(args.log, "a", buffering=1) if args.log else None
    try:
        return EdgeServer(predictor, args.endpoint, watch=args.watch, log=log,
                          state_dir=state).run()
    finally:
        if log is not None:
            log.close()
