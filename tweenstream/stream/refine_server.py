"""``tweenstream refine-server``: backprop refinement as a ZeroMQ ROUTER service.

It follows docs/protocol.md: each request is a msgpack map, raw little-endian arrays follow
as extra frames and never pass through msgpack, and every reply is ``{ok, code, reason?}``.

Requests (``cmd``)::

    submit   {job, network, settings, arrays: {params, X, Y: {dtype, shape}}} + 3 frames
             -> {code: "queued", position}; "busy" when the queue is full
    result   {job} -> {code: "queued" | "running", progress} while it waits;
             {code: "done", before, after, epochs, stopped_early, samples_per_s, dtype, shape}
             + the refined parameters as one frame (the job is then forgotten);
             {ok: false, code: "job_failed" | "unknown_job", reason}
    cancel   {job} -> {code: "cancelled"}: a queued job is dropped, a running one stops at
             the end of its current epoch
    status   -> {queued, running, done, failed, served}

Jobs from any number of daemons queue in arrival order and run ``max_running`` at a time (one
by default), each in a job thread of its own; each job is parallel over its batch
(``runtime/refine.py``) on ``threads`` threads, or, with ``workers`` (e.g. ``RayWorkers``:
``refine-server --ray``), on each job thread's own group of Ray actors. A job whose cluster
cannot be reached runs in threads instead (counted in ``fallbacks``); one whose Ray worker dies
fails, and nothing partial is returned.
A bad request gets a specific error reply and never stops the server; an unexpected fault in
one request is answered with ``internal_error``, and one in a job fails that job only.
"""

from __future__ import annotations

import collections
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import zmq

from tweenstream.stream import protocol
from tweenstream.stream.protocol import ProtocolError

_DTYPES = {"params": (protocol.X_DTYPE,), "X": (protocol.X_DTYPE,),
           "Y": (protocol.LABEL_DTYPE, protocol.TARGET_DTYPE)}


@dataclass
class _Job:
    id: str
    network: Any
    params: np.ndarray | None
    X: np.ndarray | None
    Y: np.ndarray | None
    settings: Any
    loss: dict[str, Any]  # the Learner's loss settings: loss, cosine_weight
    state: str = "queued"
    progress: dict[str, Any] | None = None
    result: Any = None
    error: str | None = None
    cancelled: bool = False

    def drop_data(self) -> None:
        self.params = self.X = self.Y = None


def _loss(given: Any, network: Any) -> dict[str, Any]:
    """The ``loss`` map of a submit request (absent: the task's default loss), checked as the
    Learner checks it: ``{"loss": "auto" | "squared" | "cosine", "cosine_weight": w}``."""
    from tweenstream.runtime.config import TweenConfig, check_loss

    if not isinstance(given, dict) or not set(given) <= {"loss", "cosine_weight"}:
        raise ValueError("loss must be a map with keys among ['cosine_weight', 'loss']")
    loss = {"loss": given.get("loss", "auto"), "cosine_weight": given.get("cosine_weight", 0.9)}
    if not isinstance(loss["loss"], str) or isinstance(loss["cosine_weight"], bool) \
            or not isinstance(loss["cosine_weight"], (int, float)):
        raise ValueError(f"loss must name a loss and a numeric cosine_weight, found {given!r}")
    TweenConfig(**loss)  # the Learner's own checks: known loss, weight in [0, 1]
    check_loss(loss["loss"], network.task)
    return loss


class _Cancelled(Exception):
    """Raised from a job's progress callback to stop it between epochs."""


def job_frames(job: str, learner: Any, X: np.ndarray, Y: np.ndarray, settings: Any
               ) -> list[bytes]:
    """The frames of a ``submit`` request for ``learner``'s current parameters, with the
    samples (X as the replay reservoir keeps them) turned into the network's own rows, and the
    learner's loss (``loss``, ``cosine_weight``), so the server trains on the same loss.

    Examples
    --------
    >>> from tweenstream import Dense, Learner, Network
    >>> from tweenstream.runtime.refine import RefineSettings
    >>> model = Learner(Network(2, [Dense(2)]))
    >>> frames = job_frames("a", model, np.zeros((4, 2), np.float32), np.zeros(4, np.int64),
    ...                     RefineSettings())
    >>> len(frames), protocol.unpack(frames[0])["arrays"]["X"]["shape"]
    (4, [4, 2])
    """
    labels = np.asarray(Y).dtype.kind in "iub"
    # the server trains the network alone: it gets the rows the network reads, scaled with
    # this learner's statistics (and standardised targets), so its result fits this learner
    X = learner.network_inputs(np.asarray(X))
    if not labels:
        k = learner.network.n_outputs
        Y = learner.network_targets(np.asarray(Y).reshape(len(Y), -1))[:, :k]
    arrays = {"params": np.ascontiguousarray(learner.arena.params, protocol.X_DTYPE),
              "X": np.ascontiguousarray(X, protocol.X_DTYPE),
              "Y": np.ascontiguousarray(Y, protocol.LABEL_DTYPE if labels
                                        else protocol.TARGET_DTYPE)}
    from tweenstream.runtime.refine import loss_of

    loss, weight = loss_of(learner)
    header = {"cmd": "submit", "job": job, "network": learner.network.to_dict(),
              "settings": asdict(settings), "loss": {"loss": loss, "cosine_weight": weight},
              "arrays": {k: {"dtype": a.dtype.str, "shape": list(a.shape)}
                         for k, a in arrays.items()}}
    return [protocol.pack(header), *(a.tobytes() for a in arrays.values())]


class RefineServer:
    """A refinement service; ``serve`` runs it until ``stop`` or its time/request bound.

    Examples
    --------
    >>> server = RefineServer("tcp://127.0.0.1:*")
    >>> server.endpoint.startswith("tcp://127.0.0.1:")
    True
    >>> server.close()
    """

    def __init__(self, endpoint: str, *, threads: int = 0, max_queue: int = 8,
                 max_job_bytes: int = 512 << 20, keep_results: int = 64,
                 max_epochs: int = 1_000, workers: Callable[[], Any] | None = None,
                 max_running: int = 1) -> None:
        if type(max_running) is not int or max_running < 1:
            raise ValueError(f"max_running must be an int >= 1, found {max_running!r}")
        self.threads, self.max_queue, self.max_job_bytes = threads, max_queue, max_job_bytes
        self.make_workers, self.max_running = workers, max_running
        self.fallbacks = 0
        self.job_workers: list[Any] = []  # each job thread's workers, once it has made them
        self.keep_results, self.max_epochs = keep_results, max_epochs
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, max_job_bytes + (1 << 20))
        self._sock.bind(endpoint)
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._jobs: collections.OrderedDict[str, _Job] = collections.OrderedDict()
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.served = self.done = self.failed = 0
        self._workers = [threading.Thread(target=self._work, daemon=True,
                                          name=f"tweenstream-refine-job-{i}")
                         for i in range(max_running)]

    def stop(self) -> None:
        """Ask ``serve`` to return (thread-safe)."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if not self._sock.closed:
            self._sock.close(linger=0)
            self._ctx.term()

    def serve(self, max_seconds: float | None = None, max_requests: int | None = None) -> None:
        """Answer requests until ``stop``, ``max_seconds`` or ``max_requests``; then close."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        for thread in self._workers:
            thread.start()
        try:
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() > deadline:
                    break
                if max_requests is not None and self.served >= max_requests:
                    break
                if not self._sock.poll(50, zmq.POLLIN):
                    continue
                frames = self._sock.recv_multipart(copy=False)
                envelope, body = protocol.split_envelope([f.buffer for f in frames])
                try:
                    reply = self._answer(body)
                except Exception as err:
                    reply = protocol.error_reply("internal_error",
                                                 f"{type(err).__name__}: {err}")
                self._sock.send_multipart([bytes(e) for e in envelope] + reply)
                self.served += 1
        finally:
            self.close()
            for thread in self._workers:
                thread.join(5)
            for workers in self.job_workers:  # e.g. Ray actors: released with the server
                reset = getattr(workers, "reset", None)
                if reset is not None:
                    reset()

    def _answer(self, body: list[Any]) -> list[bytes]:
        try:
            if not body:
                raise ProtocolError("truncated", "empty request")
            request = protocol.unpack(body[0])
            cmd = request.get("cmd")
            if cmd == "submit":
                return self._submit(request, body[1:])
            if cmd == "result":
                return self._result(request)
            if cmd == "status":
                return [protocol.pack(self.status())]
            if cmd == "cancel":
                return self._cancel(request)
            return protocol.error_reply("unknown_command", f"unknown command {cmd!r}; expected "
                                        "submit, result, cancel or status")
        except ProtocolError as err:
            return protocol.error_reply(err.code, str(err))

    def status(self) -> dict[str, Any]:
        with self._lock:
            states = collections.Counter(j.state for j in self._jobs.values())
        return {"ok": True, "code": "ok", "queued": states["queued"],
                "running": states["running"], "done": self.done, "failed": self.failed,
                "served": self.served, "max_running": self.max_running,
                "backend": "threads" if self.make_workers is None else "workers",
                "fallbacks": self.fallbacks}

    def _submit(self, request: dict[str, Any], frames: list[Any]) -> list[bytes]:
        from tweenstream.models.network import Network
        from tweenstream.runtime.refine import RefineSettings

        job_id = request.get("job")
        if not isinstance(job_id, str) or not 0 < len(job_id) <= 64:
            raise ProtocolError("bad_header", "job must be a str of 1..64 chars")
        with self._lock:
            if job_id in self._jobs:
                raise ProtocolError("bad_header", f"job {job_id!r} is already known")
            waiting = sum(j.state in ("queued", "running") for j in self._jobs.values())
        if waiting >= self.max_queue:
            return protocol.error_reply("busy", f"{waiting} jobs wait; the limit is "
                                        f"{self.max_queue}")
        try:
            net = Network.from_dict(request.get("network"))  # type: ignore[arg-type]
            known = {f.name for f in fields(RefineSettings)}
            given = request.get("settings")
            if not isinstance(given, dict) or not set(given) <= known:
                raise ValueError(f"settings must be a map with keys among {sorted(known)}")
            settings = RefineSettings(**given)
            if settings.epochs > self.max_epochs:
                raise ValueError(f"epochs {settings.epochs} is above this server's limit "
                                 f"{self.max_epochs}")
            if self.threads:  # the server decides how many cores a job gets
                settings = RefineSettings(**{**given, "threads": self.threads})
            loss = _loss(request.get("loss", {}), net)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise ProtocolError("bad_value", f"bad job: {err}") from None
        arrays = self._arrays(request.get("arrays"), frames)
        X, Y, params = arrays["X"], arrays["Y"], arrays["params"]
        classification = net.task == "classification"
        if params.shape != (net.param_count,) or not np.isfinite(params).all():
            raise ProtocolError("wrong_shape", f"params must be {net.param_count} finite values")
        if X.ndim != 2 or X.shape[1] != net.n_inputs or not np.isfinite(X).all():
            raise ProtocolError("wrong_shape", f"X must be finite [n, {net.n_inputs}]")
        want = [len(X)] if classification else [len(X), net.n_outputs]
        if list(Y.shape) != want or (Y.dtype.kind == "i") != classification:
            raise ProtocolError("wrong_shape", f"Y must be {want} "
                                f"{'int64 labels' if classification else 'float32 targets'}")
        if classification and ((Y < 0) | (Y >= net.n_outputs)).any():
            raise ProtocolError("bad_label", f"labels must be in [0, {net.n_outputs})")
        if len(X) < 2:
            raise ProtocolError("bad_value", "a job needs at least 2 samples")
        job = _Job(job_id, net, params.copy(), X.copy(), Y.copy(), settings, loss)
        with self._lock:
            self._jobs[job_id] = job
        self._queue.put(job)
        return [protocol.pack({"ok": True, "code": "queued", "job": job_id,
                               "position": waiting})]

    def _arrays(self, meta: Any, frames: list[Any]) -> dict[str, np.ndarray]:
        if not isinstance(meta, dict) or set(meta) != set(_DTYPES):
            raise ProtocolError("bad_header", "arrays must describe params, X and Y")
        if len(frames) != 3:
            raise ProtocolError("truncated", f"submit needs 3 array frames, found {len(frames)}")
        total = sum(memoryview(f).nbytes for f in frames)
        if total > self.max_job_bytes:
            raise ProtocolError("oversized", f"job is {total} bytes, limit {self.max_job_bytes}")
        out = {}
        for (name, dtypes), frame in zip(_DTYPES.items(), frames, strict=True):
            m = meta[name]
            if not isinstance(m, dict) or m.get("dtype") not in dtypes:
                raise ProtocolError("wrong_dtype", f"{name} dtype must be one of {dtypes}")
            shape = m.get("shape")
            if (not isinstance(shape, list) or not 1 <= len(shape) <= 2
                    or not all(type(d) is int and 1 <= d <= self.max_job_bytes for d in shape)):
                raise ProtocolError("wrong_shape", f"{name} shape must be 1 or 2 positive ints")
            need = math.prod(shape) * (8 if m["dtype"] == "<i8" else 4)  # Python ints: exact
            if memoryview(frame).nbytes != need:
                raise ProtocolError("truncated", f"{name} {shape} needs {need} bytes, frame "
                                    f"has {memoryview(frame).nbytes}")
            out[name] = np.frombuffer(frame, dtype=m["dtype"]).reshape(shape)
        return out

    def _cancel(self, request: dict[str, Any]) -> list[bytes]:
        job_id = request.get("job")
        with self._lock:
            job = self._jobs.get(job_id) if isinstance(job_id, str) else None
            if job is not None:
                job.cancelled = True
                if job.state in ("done", "failed", "queued"):
                    del self._jobs[job.id]  # the worker skips a cancelled queued job
                    job.drop_data()
        if job is None:
            return protocol.error_reply("unknown_job", f"no job {job_id!r} here")
        return [protocol.pack({"ok": True, "code": "cancelled", "job": job.id})]

    def _result(self, request: dict[str, Any]) -> list[bytes]:
        job_id = request.get("job")
        with self._lock:
            job = self._jobs.get(job_id) if isinstance(job_id, str) else None
            if job is not None and job.state in ("done", "failed"):
                del self._jobs[job.id]
        if job is None:
            return protocol.error_reply("unknown_job", f"no job {job_id!r} here")
        if job.state == "failed":
            return protocol.error_reply("job_failed", job.error or "failed")
        if job.state != "done":
            return [protocol.pack({"ok": True, "code": job.state, "progress": job.progress})]
        r = job.result
        params = np.ascontiguousarray(r.params, "<f4")
        return [protocol.pack({"ok": True, "code": "done", "before": r.before, "after": r.after,
                               "epochs": r.epochs_run, "stopped_early": r.stopped_early,
                               "samples_per_s": r.samples_per_s, "dtype": "<f4",
                               "shape": list(params.shape)}), params.tobytes()]

    def _work(self) -> None:
        workers = None  # this job thread's own workers, made at its first job, kept warm
        while not self._stop.is_set():
            try:
                job = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if not job.cancelled:
                if workers is None and self.make_workers is not None:
                    workers = self.make_workers()
                    self.job_workers.append(workers)
                self._run(job, workers)
            job.drop_data()
            with self._lock:  # results nobody fetched are dropped, oldest first
                finished = [k for k, j in self._jobs.items() if j.state in ("done", "failed")]
                for k in finished[:max(0, len(finished) - self.keep_results)]:
                    del self._jobs[k]

    def _run(self, job: _Job, workers: Any = None) -> None:
        from tweenstream.runtime.learner import Learner
        from tweenstream.runtime.refine import refine

        def report(p: dict[str, Any]) -> None:
            job.progress = p
            if job.cancelled or self._stop.is_set():
                raise _Cancelled

        job.state = "running"
        try:
            if job.params is None or job.X is None or job.Y is None:
                raise _Cancelled  # cancelled while it was being picked up
            # the job's rows are the network's own (scaled by the client): no stage here
            learner = Learner(job.network, mode="backprop", scaling="off",
                              target_scaling="off", **job.loss)
            learner.replace_params(job.params)
            try:
                job.result = refine(learner, job.X, job.Y, job.settings, progress=report,
                                    workers=workers)
            except ConnectionError:  # the cluster is out of reach: this process's threads
                if workers is None:
                    raise
                with self._lock:
                    self.fallbacks += 1
                job.result = refine(learner, job.X, job.Y, job.settings, progress=report)
            job.state = "done"
            with self._lock:
                self.done += 1
        except _Cancelled:
            job.error, job.state = "cancelled", "failed"
        except Exception as err:
            job.error, job.state = f"{type(err).__name__}: {err}", "failed"
            with self._lock:
                self.failed += 1


class ServerLost(RuntimeError):
    """The refine-server stopped answering mid-job, or the job outlived its time limit."""


class _Silent(ServerLost):
    """The server stopped answering."""


def refine_remote(control: Any, job: str, learner: Any, X: np.ndarray, Y: np.ndarray,
                  settings: Any, *, job_timeout: float, poll_s: float = 0.05,
                  stop: threading.Event | None = None,
                  progress: Any = None) -> Any:
    """Submit a job through ``control`` (a ``Control`` client) and wait for its result.

    Raises ``TimeoutError`` if the submit gets no reply (server unreachable), ``ServerLost``
    if the server goes silent or the job exceeds ``job_timeout`` seconds, ``RuntimeError`` if
    the server refuses or fails the job. Returns a ``RefineResult``.
    """

    reply = protocol.unpack(control.request(job_frames(job, learner, X, Y, settings), "submit")[0])
    try:
        return _wait(control, job, learner, reply, job_timeout, poll_s,
                     stop or threading.Event(), progress)
    except _Silent:
        raise  # nobody to tell
    except (ServerLost, RuntimeError):
        cancel_quietly(control, job)
        raise


def cancel_quietly(control: Any, job: str) -> None:
    """Best effort: tell the server to stop a job whose result nobody will fetch."""
    try:
        control.request([protocol.pack({"cmd": "cancel", "job": job})], "cancel")
    except TimeoutError:
        pass


def _wait(control: Any, job: str, learner: Any, reply: dict[str, Any], job_timeout: float,
          poll_s: float, waiter: threading.Event, progress: Any) -> Any:
    from tweenstream.runtime.refine import RefineResult

    if not reply.get("ok"):
        raise RuntimeError(f"the refine-server refused the job: {reply.get('code')}: "
                           f"{reply.get('reason')}")
    deadline = time.monotonic() + job_timeout
    while True:
        try:
            frames = control.request([protocol.pack({"cmd": "result", "job": job})], "result")
        except TimeoutError as err:
            raise _Silent(f"the refine-server went silent mid-job: {err}") from None
        head = protocol.unpack(frames[0])
        if head.get("code") == "done" and len(frames) == 2:
            if len(frames[1]) != learner.arena.params.nbytes:
                raise RuntimeError(f"the refine-server returned {len(frames[1])} bytes of "
                                   f"parameters, the model has {learner.arena.params.nbytes}")
            params = np.frombuffer(frames[1], dtype="<f4").copy()
            return RefineResult(params, head["before"], head["after"], head["epochs"],
                                head["stopped_early"], head["samples_per_s"])
        if not head.get("ok"):
            raise RuntimeError(f"refine-server: {head.get('code')}: {head.get('reason')}")
        if progress is not None and head.get("progress"):
            progress(head["progress"])
        if time.monotonic() > deadline:
            raise ServerLost(f"the job outlived its {job_timeout:g} s limit")
        if waiter.wait(poll_s):  # poll interval between result requests, not a sync point
            raise ServerLost("the daemon is stopping")
