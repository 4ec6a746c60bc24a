"""A daemon running in a thread over ipc endpoints in a short temporary folder."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from tweenstream import Learner
from tweenstream.stream.client import Control
from tweenstream.stream.daemon import Daemon, ServeConfig


class Served:
    """Start a daemon in a thread; ``stop()`` shuts it down and checks the thread ended."""

    def __init__(self, learner: Learner | Callable[[ServeConfig], Daemon],
                 control_keys: tuple[Any, Any] | None = None, **settings: Any) -> None:
        """``learner``: the one model to serve, or a function that builds the daemon from the
        config (e.g. ``Daemon.serve`` of several models)."""
        self.folder = tempfile.mkdtemp(prefix="ts-", dir="/tmp")  # ipc paths must be short
        if settings.pop("tcp", False):  # loopback, ports chosen by the system
            endpoints = {"data": "tcp://127.0.0.1:*", "control": "tcp://127.0.0.1:*",
                         "insecure_control": True}
        else:
            endpoints = {"data": f"ipc://{self.folder}/data", "control": f"ipc://{self.folder}/ctl"}
        base = ServeConfig(**endpoints, checkpoint_dir=f"{self.folder}/ck", poll_ms=10)
        if settings.get("metrics") is True:
            settings["metrics"] = f"ipc://{self.folder}/metrics"
        self.config = replace(base, **settings)
        self.outputs = f"{self.folder}/ck/exports"  # where save and export write by default
        self._keys = control_keys or (None, None)
        self._build = learner if callable(learner) and not isinstance(learner, Learner) \
            else None
        self._start(self._build(self.config) if self._build is not None
                    else Daemon(learner, self.config, log=io.StringIO()))

    def _start(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.log = daemon._log_file
        self.thread = threading.Thread(target=self.daemon.run, daemon=True)
        self.thread.start()
        assert self.daemon.ready.wait(60), "the daemon did not bind its sockets"
        self.config = replace(self.config, **{k: v for k, v in self.daemon.bound.items()})
        secret, server = self._keys
        self.control = Control(self.config.control, timeout=20.0, retries=1,
                               curve_secret=secret, server_public=server)
        self.control.status()  # answers once the kernels are warm and the sockets bound

    def restart(self) -> None:
        """Shut down (which checkpoints) and resume from the checkpoint folder."""
        self.stop(keep_files=True)
        if self._build is not None:
            self._start(self._build(self.config))
            return
        fallback = self.daemon.learner.clone
        self._start(Daemon.resume(fallback, self.config, log=io.StringIO()))

    def wait(self, done: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict:
        """Poll the status until ``done(status)`` holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        pause = 0.002  # polling a condition, bounded by the deadline; the pause grows to 50 ms
        while True:    # so that a long wait does not keep the daemon's loop busy with status
            st = self.control.status()
            if done(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached in {timeout} s; status: {st}")
            time.sleep(pause)
            pause = min(2 * pause, 0.05)

    def stop(self, keep_files: bool = False) -> None:
        if self.thread.is_alive():
            self.control.shutdown()
            self.thread.join(20)
        self.control.close()
        if not keep_files:
            shutil.rmtree(self.folder, ignore_errors=True)
        assert not self.thread.is_alive(), "the daemon did not stop"


class ServerThread:
    """A refine-server in a thread on a loopback port the system picks; bounded in time."""

    def __init__(self, max_seconds: float = 300.0, **options: Any) -> None:
        from tweenstream.stream.refine_server import RefineServer

        self.server = RefineServer("tcp://127.0.0.1:*", **options)
        self.endpoint = self.server.endpoint
        self.thread = threading.Thread(target=self.server.serve, args=(max_seconds,),
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(20)
        assert not self.thread.is_alive()


@contextlib.contextmanager
def serve_process(folder: Any, *flags: str, stderr: Any = None
                  ) -> Iterator[subprocess.Popen]:
    """``tweenstream serve`` in a process of its own, with ipc data and control endpoints and
    its log in ``folder``; killed on the way out if it has not stopped by itself."""
    cmd = [sys.executable, "-m", "tweenstream", "serve", "--data", f"ipc://{folder}/data",
           "--control", f"ipc://{folder}/ctl", "--log", f"{folder}/log", *flags]
    proc = subprocess.Popen(cmd, stderr=stderr, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def short_folder() -> Iterator[Any]:
    """A temporary folder under /tmp (ipc paths must be short), removed afterwards."""
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="ts-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


RAY_LISTENERS: set = set()  # sockets the session's Ray instance opened for listening


def listening_sockets() -> set:
    """(address, port) of every TCP socket listening on this machine (Linux /proc)."""
    out = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = open(f"/proc/net/{name}").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            address, port = fields[1].split(":")
            out.add((address, int(port, 16)))
    return out


def is_loopback(address: str) -> bool:
    """A /proc/net/tcp{,6} hex address on loopback: 127.x, ::1, or ::ffff:127.x."""
    if len(address) == 8:
        return address.endswith("7F")  # little-endian: the last byte is the first octet
    return address == "00000000000000000000000001000000" or (
        address.startswith("0000000000000000FFFF0000") and address.endswith("7F"))
