"""Clients of the daemon: ``Producer`` sends samples, ``Control`` sends commands and predicts.

``Control`` is a lazy-pirate client: each request waits ``timeout`` seconds for its reply; on
silence it closes its socket, opens a new one and tries again, ``retries`` times, then raises
``TimeoutError``. It never hangs.

A ``Producer`` given the daemon's control endpoint keeps every message it sent in a bounded
resend buffer until the daemon reports it checkpointed (``acked``). When its connection comes
back (the daemon restarted) or when asked (``sync``, ``flush``), it resends everything after
what the daemon applied; the daemon's per-stream sequence numbers drop what it already has, so
each message is learned exactly once across crashes.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from tweenstream.stream import protocol
from tweenstream.stream.intake import monitor_events
from tweenstream.stream.security import client_keys

REPLY_BYTES = 64 << 20  # a reply map from the daemon may be large (status of many streams)


class _Keys:
    """CURVE files of a client: its own certificate and the server's public one."""

    def __init__(self, secret_file: str | Path | None, server_public_file: str | Path | None):
        if (secret_file is None) != (server_public_file is None):
            raise ValueError("CURVE needs both the client's secret certificate and the "
                             "server's public certificate")
        self.files = (secret_file, server_public_file) if secret_file else None

    def apply(self, sock: zmq.Socket) -> None:
        if self.files is not None:
            client_keys(sock, *self.files)  # type: ignore[arg-type]


class Producer:
    """Sends ``learn`` and ``label`` messages to a daemon's data socket, numbering them.

    With ``on_full="block"`` a send waits up to ``send_timeout`` seconds when the daemon's
    queue is full (counted in ``blocked``); ``"drop"`` gives up at once. A message that could
    not be sent is counted in ``dropped`` and its seq is not reused.

    With ``control`` (the daemon's control endpoint) the producer keeps what it sent, up to
    ``resend_messages`` messages and ``resend_bytes`` bytes, until the daemon has checkpointed
    it, and resends what the daemon lacks after a reconnect, on ``sync()`` and in
    ``flush()``. A message pushed out of a full buffer before the daemon checkpointed it is
    counted in ``unprotected``: it can no longer be resent.

    Examples
    --------
    >>> with Producer("inproc://nowhere-yet", stream="s1", start_seq=5) as p:
    ...     p.seq
    5
    """

    def __init__(self, endpoint: str, *, stream: str = "default", start_seq: int = 0,
                 sndhwm: int = 1000, on_full: str = "block", send_timeout: float = 5.0,
                 bind: bool = False, publish: bool = False, context: zmq.Context | None = None,
                 curve_secret: str | Path | None = None,
                 server_public: str | Path | None = None, control: str | None = None,
                 control_timeout: float = 30.0, resend_messages: int = 10_000,
                 resend_bytes: int = 256 << 20) -> None:
        if on_full not in ("block", "drop"):
            raise ValueError(f"on_full must be 'block' or 'drop', found {on_full!r}")
        if resend_messages < 1 or resend_bytes < 1:
            raise ValueError("resend_messages and resend_bytes must be >= 1")
        self.stream = stream
        self.seq = start_seq
        self.on_full = on_full
        self.sent = self.blocked = self.dropped = 0
        self.resent = self.unprotected = self.reconnects = 0
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self._sock = self._ctx.socket(zmq.PUB if publish else zmq.PUSH)
        self._sock.setsockopt(zmq.SNDHWM, sndhwm)
        self._sock.setsockopt(zmq.SNDTIMEO, int(send_timeout * 1000))
        self._sock.setsockopt(zmq.LINGER, 2000)
        _Keys(curve_secret, server_public).apply(self._sock)
        self._control = Control(control, timeout=control_timeout, retries=1,
                                context=self._ctx, curve_secret=curve_secret,
                                server_public=server_public) if control else None
        self._buffer: deque[tuple[int, list[bytes]]] = deque()
        self._buffered_bytes = 0
        self._limits = (resend_messages, resend_bytes)
        self._monitor = self._sock.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED) if control else None
        self._down = False
        self._resync = False
        (self._sock.bind if bind or publish else self._sock.connect)(endpoint)

    def _watch(self) -> None:
        """Note a reconnection (the daemon came back): its queue may have lost messages."""
        if self._monitor is None:
            return
        for event in monitor_events(self._monitor):
            if event == zmq.EVENT_DISCONNECTED:
                self._down = True
            elif event == zmq.EVENT_CONNECTED and self._down:
                self._down = False
                self._resync = True
                self.reconnects += 1

    def _keep(self, seq: int, frames: list[bytes]) -> None:
        self._buffer.append((seq, frames))
        self._buffered_bytes += sum(len(f) for f in frames)
        most, most_bytes = self._limits
        full = len(self._buffer) > most or self._buffered_bytes > most_bytes
        if full and not self._down:  # the daemon may have checkpointed some: trim those
            try:
                self._trim(self.acked()["durable_through"])
            except TimeoutError:
                pass  # not answering: fall through and give up the oldest
        while len(self._buffer) > most or self._buffered_bytes > most_bytes:
            _, old = self._buffer.popleft()
            self._buffered_bytes -= sum(len(f) for f in old)
            self.unprotected += 1

    def _trim(self, durable: int) -> None:
        """Forget what the daemon has checkpointed: it will never need resending."""
        while self._buffer and self._buffer[0][0] <= durable:
            _, old = self._buffer.popleft()
            self._buffered_bytes -= sum(len(f) for f in old)

    def acked(self) -> dict[str, Any]:
        """The daemon's ``acked`` reply for this stream (needs ``control``)."""
        if self._control is None:
            raise ValueError("acked needs the Producer's control endpoint")
        reply = self._control.call("acked", stream=self.stream)
        if not reply.get("ok"):
            raise ValueError(f"{reply.get('code')}: {reply.get('reason')}")
        return reply

    def sync(self) -> int:
        """Drop what the daemon checkpointed from the buffer, resend what it has not applied;
        returns how many messages were resent (0 without ``control``)."""
        if self._control is None:
            return 0
        reply = self.acked()
        self._trim(reply["durable_through"])
        again = [frames for seq, frames in self._buffer if seq > reply["applied_through"]]
        for frames in again:
            self._push(frames)
        self.resent += len(again)
        self._resync = False
        return len(again)

    def poll(self) -> bool:
        """Resend now if the connection came back since the last look (a producer that is
        idle for a while calls this); returns whether it resent."""
        self._watch()
        if not self._resync:
            return False
        self.sync()
        return True

    def flush(self, timeout: float = 60.0) -> bool:
        """Resend until the daemon has applied every message sent, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            self._watch()
            if self.acked()["applied_through"] >= self.seq - 1:
                return True
            if time.monotonic() > deadline:
                return False
            self.sync()
            time.sleep(0.01)  # give the daemon time to learn what was resent; bounded above

    def _push(self, frames: list[bytes]) -> bool:
        try:
            self._sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            if self.on_full == "drop":
                self.dropped += 1
                return False
            self.blocked += 1
            try:
                self._sock.send_multipart(frames, copy=False)
            except zmq.Again:
                self.dropped += 1
                return False
        return True

    def _send(self, frames: list[bytes]) -> bool:
        seq = self.seq
        self.seq += 1
        if self._control is not None:
            self._keep(seq, frames)
            self._watch()
            if self._resync:
                try:
                    self.sync()  # resends this message too if the daemon lacks it
                    self.sent += 1
                    return True
                except TimeoutError:
                    pass  # the daemon is not answering yet: try again at the next send
        sent = self._push(frames)
        self.sent += sent
        return sent

    def learn(self, X: Any, y: Any) -> bool:
        """Send a batch of samples to learn from; returns False if it was dropped."""
        return self._send(protocol.encode("learn", X, y, seq=self.seq, stream=self.stream))

    def label(self, ids: list[Any], y: Any) -> bool:
        """Send the labels of earlier predictions, by their ids."""
        return self._send(protocol.encode("label", None, y, seq=self.seq, stream=self.stream,
                                          ids=ids))

    def close(self, linger: float = 2.0) -> None:
        """Close the socket, waiting up to ``linger`` seconds for queued messages to leave."""
        if self._monitor is not None:
            self._sock.disable_monitor()
            self._monitor.close(linger=0)
        if self._control is not None:
            self._control.close()
        self._sock.close(linger=int(linger * 1000))
        if self._own_ctx:
            self._ctx.term()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Control:
    """Commands and predictions over the daemon's control socket (lazy pirate).

    Without an endpoint it uses this user's default control socket (``serve``'s default).

    Examples
    --------
    >>> c = Control("tcp://127.0.0.1:9", timeout=0.05, retries=1)
    >>> c.status()
    Traceback (most recent call last):
    ...
    TimeoutError: no reply from tcp://127.0.0.1:9 to 'status' after 1 tries of 0.05 s
    >>> c.close()
    """

    def __init__(self, endpoint: str | None = None, *, timeout: float = 5.0, retries: int = 3,
                 context: zmq.Context | None = None, curve_secret: str | Path | None = None,
                 server_public: str | Path | None = None) -> None:
        if retries < 1 or timeout <= 0:
            raise ValueError("retries must be >= 1 and timeout > 0")
        if endpoint is None:
            from tweenstream.stream.security import default_control

            endpoint = default_control()
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self._keys = _Keys(curve_secret, server_public)
        self._sock: zmq.Socket | None = None

    def _open(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        self._keys.apply(sock)
        sock.connect(self.endpoint)
        return sock

    def request(self, frames: list[bytes], what: str) -> list[bytes]:
        """Send one request and return the reply frames, retrying on silence."""
        for _ in range(self.retries):
            if self._sock is None:
                self._sock = self._open()
            self._sock.send_multipart(frames)
            if self._sock.poll(int(self.timeout * 1000), zmq.POLLIN):
                return self._sock.recv_multipart()
            self._sock.close(linger=0)  # the REQ socket is stuck mid-request: start afresh
            self._sock = None
        raise TimeoutError(f"no reply from {self.endpoint} to {what!r} after {self.retries} "
                           f"tries of {self.timeout:g} s")

    def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Run a command; returns the reply map ``{ok, code, reason?, ...}``. Arguments that
        are None are left out (``model=None``: the daemon's only model, or all of them)."""
        request = {"cmd": cmd, **{k: v for k, v in args.items() if v is not None}}
        reply = self.request([protocol.pack(request)], cmd)
        return protocol.unpack(reply[0], REPLY_BYTES)

    # Commands about one model take ``model``: a daemon serving one model needs none.
    def status(self, model: str | None = None) -> dict[str, Any]:
        return self.call("status", model=model)

    def metrics(self, model: str | None = None) -> dict[str, Any]:
        return self.call("metrics", model=model)

    def models(self) -> dict[str, Any]:
        """Every model the daemon serves: routes, contract and figures."""
        return self.call("models")

    def add_model(self, name: str, **table: Any) -> dict[str, Any]:
        """Serve a new model ``name``; ``table`` holds the keys of a config file's
        ``[models.NAME]`` table (``routes``, ``inputs``, ``settings``, ...)."""
        return self.call("add-model", model=name, table=table)

    def remove_model(self, name: str) -> dict[str, Any]:
        """Stop serving model ``name`` after a last checkpoint (its files are kept)."""
        return self.call("remove-model", model=name)

    def checkpoint(self, model: str | None = None) -> dict[str, Any]:
        return self.call("checkpoint", model=model)

    def set_phase(self, phase: str, model: str | None = None) -> dict[str, Any]:
        return self.call("set-phase", phase=phase, model=model)

    def configure(self, model: str | None = None, **settings: Any) -> dict[str, Any]:
        """Change learner settings of a running model (``Learner.configure``'s checks)."""
        return self.call("configure", settings=settings, model=model)

    def save(self, name: str, overwrite: bool = False, model: str | None = None
             ) -> dict[str, Any]:
        """Save the model as ``name`` (a file name) in the daemon's output folder."""
        return self.call("save", name=name, overwrite=overwrite, model=model)

    def export(self, name: str, *, push: str | None = None, overwrite: bool = False,
               wait: float = 120.0, model: str | None = None) -> dict[str, Any]:
        """Export ONNX as ``name`` in the daemon's output folder (and push it to the daemon's
        configured target ``push``); waits up to ``wait`` seconds for the job to end and
        returns its record (``state`` is ``running`` if it has not)."""
        started = self.call("export", name=name, push=push, overwrite=overwrite, model=model)
        if not started.get("ok"):
            return started
        deadline = time.monotonic() + wait
        while True:
            job = self.call("job", job=started["job"], model=model)
            if job.get("state") != "running" or time.monotonic() > deadline:
                return job
            time.sleep(0.02)  # polling a job, bounded by the deadline

    def streams(self, model: str | None = None) -> dict[str, Any]:
        """Every stream's summary, fetched page by page."""
        out: dict[str, Any] = {}
        while True:
            page = self.call("streams", offset=len(out), model=model)
            if not page.get("ok"):
                raise ValueError(f"{page.get('code')}: {page.get('reason')}")
            out.update(page["streams"])
            if not page["streams"] or len(out) >= page["total"]:
                return out

    def acked(self, stream: str = "default") -> dict[str, Any]:
        """What the daemon applied and checkpointed of ``stream``."""
        return self.call("acked", stream=stream)

    def shutdown(self) -> dict[str, Any]:
        return self.call("shutdown")

    def predict(self, X: Any, *, ids: list[Any] | None = None, stream: str = "default",
                model: str | None = None) -> np.ndarray:
        """Probabilities (classification) or outputs for each row of X, shape (n, k), from
        the model ``model`` names or ``stream`` is routed to.

        With ``ids`` the daemon keeps the inputs until a ``label`` message names them.
        """
        frames = protocol.encode("predict", X, ids=ids, stream=stream, model=model)
        return self._predict(frames, "predict")

    def learn_predict(self, X: Any, y: Any, *, seq: int, stream: str = "default",
                      model: str | None = None) -> np.ndarray:
        """Predictions made before learning from (X, y)."""
        frames = protocol.encode("learn_predict", X, y, seq=seq, stream=stream, model=model)
        return self._predict(frames, "learn_predict")

    def _predict(self, frames: list[bytes], what: str) -> np.ndarray:
        reply = self.request(frames, what)
        header = protocol.unpack(reply[0], REPLY_BYTES)
        if not header.get("ok"):
            raise ValueError(f"{header.get('code')}: {header.get('reason')}")
        return np.frombuffer(reply[1], dtype=header["dtype"]).reshape(header["shape"])

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._own_ctx:
            self._ctx.term()

    def __enter__(self) -> Control:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
