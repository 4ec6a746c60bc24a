"""Clients of the daemon: ``Producer`` sends samples, ``Control`` sends commands and predicts.

``Control`` is a lazy-pirate client: each request waits ``timeout`` seconds for its reply; on
silence it closes its socket, opens a new one and tries again, ``retries`` times, then raises
``TimeoutError``. It never hangs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zmq

from tweenstream.stream import protocol
from tweenstream.stream.security import client_keys


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
                 server_public: str | Path | None = None) -> None:
        if on_full not in ("block", "drop"):
            raise ValueError(f"on_full must be 'block' or 'drop', found {on_full!r}")
        self.stream = stream
        self.seq = start_seq
        self.on_full = on_full
        self.sent = self.blocked = self.dropped = 0
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self._sock = self._ctx.socket(zmq.PUB if publish else zmq.PUSH)
        self._sock.setsockopt(zmq.SNDHWM, sndhwm)
        self._sock.setsockopt(zmq.SNDTIMEO, int(send_timeout * 1000))
        self._sock.setsockopt(zmq.LINGER, 2000)
        _Keys(curve_secret, server_public).apply(self._sock)
        (self._sock.bind if bind or publish else self._sock.connect)(endpoint)

    def _send(self, frames: list[bytes]) -> bool:
        self.seq += 1
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
        self.sent += 1
        return True

    def learn(self, X: Any, y: Any) -> bool:
        """Send a batch of samples to learn from; returns False if it was dropped."""
        return self._send(protocol.encode("learn", X, y, seq=self.seq, stream=self.stream))

    def label(self, ids: list[Any], y: Any) -> bool:
        """Send the labels of earlier predictions, by their ids."""
        return self._send(protocol.encode("label", None, y, seq=self.seq, stream=self.stream,
                                          ids=ids))

    def close(self, linger: float = 2.0) -> None:
        """Close the socket, waiting up to ``linger`` seconds for queued messages to leave."""
        self._sock.close(linger=int(linger * 1000))
        if self._own_ctx:
            self._ctx.term()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Control:
    """Commands and predictions over the daemon's control socket (lazy pirate).

    Examples
    --------
    >>> c = Control("tcp://127.0.0.1:9", timeout=0.05, retries=1)
    >>> c.status()
    Traceback (most recent call last):
    ...
    TimeoutError: no reply from tcp://127.0.0.1:9 to 'status' after 1 tries of 0.05 s
    >>> c.close()
    """

    def __init__(self, endpoint: str, *, timeout: float = 5.0, retries: int = 3,
                 context: zmq.Context | None = None, curve_secret: str | Path | None = None,
                 server_public: str | Path | None = None) -> None:
        if retries < 1 or timeout <= 0:
            raise ValueError("retries must be >= 1 and timeout > 0")
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
        """Run a command; returns the reply map ``{ok, code, reason?, ...}``."""
        reply = self.request([protocol.pack({"cmd": cmd, **args})], cmd)
        return protocol.unpack(reply[0])

    def status(self) -> dict[str, Any]:
        return self.call("status")

    def metrics(self) -> dict[str, Any]:
        return self.call("metrics")

    def checkpoint(self) -> dict[str, Any]:
        return self.call("checkpoint")

    def set_phase(self, phase: str) -> dict[str, Any]:
        return self.call("set-phase", phase=phase)

    def save(self, path: str) -> dict[str, Any]:
        return self.call("save", path=path)

    def shutdown(self) -> dict[str, Any]:
        return self.call("shutdown")

    def predict(self, X: Any, *, ids: list[Any] | None = None) -> np.ndarray:
        """Probabilities (classification) or outputs for each row of X, shape (n, k).

        With ``ids`` the daemon keeps the inputs until a ``label`` message names them.
        """
        return self._predict(protocol.encode("predict", X, ids=ids), "predict")

    def learn_predict(self, X: Any, y: Any, *, seq: int, stream: str = "default") -> np.ndarray:
        """Predictions made before learning from (X, y)."""
        frames = protocol.encode("learn_predict", X, y, seq=seq, stream=stream)
        return self._predict(frames, "learn_predict")

    def _predict(self, frames: list[bytes], what: str) -> np.ndarray:
        reply = self.request(frames, what)
        header = protocol.unpack(reply[0])
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
