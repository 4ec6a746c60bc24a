"""Files the daemon writes on request: names (never paths) inside one folder, and export jobs.

A ``save`` or ``export`` command names a file; ``OutputDir.path`` turns the name into a path
inside the configured folder, refusing anything that could escape it (separators, ``..``,
links), overwrite another file unasked, or pass for a checkpoint. Exports run as ``ExportJobs``:
a thread builds and checks the ONNX file from a snapshot of the learner and, if asked, pushes
it to an edge predictor named in the daemon's settings, with a bounded timeout, so the
daemon's loop never waits for either.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tweenstream.runtime.learner import Learner

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class OutputDir:
    """The one folder that ``save`` and ``export`` write into, by validated file name.

    Examples
    --------
    >>> import tempfile
    >>> out = OutputDir(tempfile.mkdtemp())
    >>> out.path("model.tsm", ".tsm").name
    'model.tsm'
    >>> out.path("../etc/passwd.tsm", ".tsm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: name '../etc/passwd.tsm' must be a plain file name: ...
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, name: Any, suffix: str, overwrite: bool = False) -> Path:
        """The path for ``name`` (which must end with ``suffix``); raises ``ValueError``."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"name {name!r} must be a plain file name: letters, digits, '.', "
                             "'_', '-', at most 100 characters, not starting with '.' (files "
                             "go into the output folder)")
        if not name.endswith(suffix):
            raise ValueError(f"name {name!r} must end with {suffix!r}")
        if name.lower().startswith("ckpt-"):
            raise ValueError(f"name {name!r} is reserved: 'ckpt-' names are checkpoints")
        path = self.folder / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise ValueError(f"{name!r} exists and is not a regular file; choose another name")
        if path.exists() and not overwrite:
            raise ValueError(f"{name!r} exists; send overwrite: true to replace it")
        return path

    def clean(self) -> int:
        """Remove temporary files a killed write left behind; returns how many."""
        return remove_temporaries(self.folder, "*.tsm") + remove_temporaries(self.folder, "*.onnx")


def remove_temporaries(folder: Path, names: str) -> int:
    """Remove the temporary files ``write_atomic`` leaves when killed while writing a file
    matching ``names`` (``.NAME.RANDOM.tmp``); returns how many."""
    removed = 0
    for stale in folder.glob(f".{names}.*.tmp"):
        if stale.is_file() and not stale.is_symlink():
            stale.unlink(missing_ok=True)
            removed += 1
    return removed


class ExportJobs:
    """Export jobs, one at a time, off the daemon's loop; the last ``keep`` are remembered.

    Examples
    --------
    >>> import tempfile
    >>> from tweenstream import Dense, Learner, Network
    >>> jobs = ExportJobs(OutputDir(tempfile.mkdtemp()), targets={}, push_timeout=5.0)
    >>> job = jobs.start(Learner(Network(4, [Dense(3)])), "m.onnx", push=None)
    >>> jobs.wait(job, 60.0)["state"]
    'done'
    """

    def __init__(self, out: OutputDir, targets: dict[str, str], push_timeout: float,
                 keep: int = 16) -> None:
        self.out = out
        self.targets = dict(targets)
        self.push_timeout = push_timeout
        self.keep = keep
        self._jobs: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._next = 1
        self._thread: threading.Thread | None = None

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, learner: Learner, name: Any, push: Any, overwrite: bool = False) -> int:
        """Validate, snapshot the learner and start the job; returns its id.

        Raises ``ValueError`` for a bad name or an unknown push target, ``RuntimeError`` when
        a job is still running.
        """
        if self.busy():
            raise RuntimeError("an export is still running; ask 'job' for its state")
        path = self.out.path(name, ".onnx", overwrite)
        if push is not None and push not in self.targets:
            known = ", ".join(sorted(self.targets)) or "none configured (--push-target)"
            raise ValueError(f"push target {push!r} is not configured; known: {known}")
        snapshot = learner.clone(include_state=True)
        with self._lock:
            job_id = self._next
            self._next += 1
            self._jobs[job_id] = {"job": job_id, "state": "running", "name": name,
                                  "push": push, "started": time.time()}
            while len(self._jobs) > self.keep:
                self._jobs.popitem(last=False)
        self._thread = threading.Thread(target=self._run, args=(job_id, snapshot, path, push),
                                        daemon=True, name=f"export-{job_id}")
        self._thread.start()
        return job_id

    def _run(self, job_id: int, snapshot: Learner, path: Path, push: str | None) -> None:
        from tweenstream.export.builder import ExportError, export

        result: dict[str, Any]
        try:
            report = export(snapshot, path)
            result = {"state": "done", "ok": True, "path": path.name,
                      "parity_max_abs": report["parity"]["max_abs"],
                      "weights_sha256": report["weights_sha256"]}
            if push is not None:
                result["pushed"] = self._push(self.targets[push], path)
                result["ok"] = bool(result["pushed"].get("ok"))
                result["state"] = "done" if result["ok"] else "failed"
        except ExportError as err:
            result = {"state": "failed", "ok": False, "code": "parity", "reason": str(err)}
        except Exception as err:  # a job's failure is reported through 'job', never raised
            result = {"state": "failed", "ok": False, "code": "export_failed",
                      "reason": f"{type(err).__name__}: {err}"}
        with self._lock:
            if job_id in self._jobs:
                self._jobs[job_id].update(result, finished=time.time())

    def _push(self, endpoint: str, path: Path) -> dict[str, Any]:
        from tweenstream.stream import protocol
        from tweenstream.stream.client import Control

        with Control(endpoint, timeout=self.push_timeout, retries=1) as edge:
            try:
                answer = edge.request([protocol.pack({"cmd": "swap"}), path.read_bytes()],
                                      "swap")
            except TimeoutError as err:
                return {"ok": False, "code": "timeout", "reason": str(err)}
        try:
            return protocol.unpack(answer[0])
        except protocol.ProtocolError as err:
            return {"ok": False, "code": "bad_reply", "reason": str(err)}

    def get(self, job_id: Any) -> dict[str, Any] | None:
        """A copy of the job's record, or None if unknown (or forgotten)."""
        with self._lock:
            job = self._jobs.get(job_id) if isinstance(job_id, int) else None
            return dict(job) if job is not None else None

    def wait(self, job_id: int, timeout: float) -> dict[str, Any]:
        """Wait for the running job (bounded); returns its record."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.get(job_id) or {}

    def summary(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(j) for j in self._jobs.values()]
