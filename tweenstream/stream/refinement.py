"""Backprop refinement for the daemon: when to start it, the job in a background thread, and
the checked swap-back.

A job refines a snapshot of the learner on a copy of its replay reservoir (``runtime/refine.py``)
while the daemon keeps learning. When it finishes, the result is checked: right shape, finite,
and a loss on the newest slice of the reservoir no worse than the current model's (the job
trained on those rows too: the check guards against damage, it is not a held-out score).
A passing result is swapped in as ``refined + (current - snapshot)``: the tween delta learned
while the job ran is kept, so no sample learned meanwhile is lost (replaying the reservoir's
newest part instead would learn a subsample twice and the rest not at all). A failing result
is rejected and counted. Then the daemon continues in the phase ``after`` names.

Triggers: every ``every`` samples, on a plateau of the prequential metric (accuracy, or minus
the loss for regression; ``Plateau``), on drift (Page-Hinkley on each message's mean loss), or
on the ``refine`` control command. One job runs at a time.

Where: with ``server`` set, the job goes to a refine-server (``stream/refine_server.py``); if
the server does not answer the submit, the job runs in-process instead (counted in
``fallbacks``); if it goes silent mid-job or the job exceeds ``job_timeout``, the job is
counted as failed and the daemon carries on. Without a server, the job runs in-process.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import numpy as np

from tweenstream.modes import PHASES
from tweenstream.runtime.drift import PageHinkley, Plateau
from tweenstream.runtime.learner import Learner
from tweenstream.runtime.refine import RefineResult, RefineSettings, evaluate, refine


class Refinement:
    """Runs at most one refinement job at a time for one learner."""

    def __init__(self, settings: RefineSettings, *, after: str = "tween", every: int = 0,
                 drift: PageHinkley | None = None, plateau: Plateau | None = None,
                 min_samples: int = 200,
                 check_rows: int = 1000, server: str | None = None, timeout: float = 5.0,
                 job_timeout: float = 600.0) -> None:
        if after not in PHASES:
            raise ValueError(f"after must be one of {', '.join(PHASES)}, found {after!r}")
        self.settings, self.after, self.every, self.drift = settings, after, every, drift
        self.plateau = plateau
        self.min_samples, self.check_rows = min_samples, check_rows
        self.server, self.timeout, self.job_timeout = server, timeout, job_timeout
        self.started = self.accepted = self.rejected = self.failed = self.fallbacks = 0
        self.progress: dict[str, Any] | None = None
        self._halt = threading.Event()
        self.last: dict[str, Any] | None = None
        self._since = 0
        self._thread: threading.Thread | None = None
        self._result: RefineResult | None = None
        self._error: str | None = None
        self._snapshot: np.ndarray | None = None
        self._reason = ""

    @property
    def running(self) -> bool:
        return self._thread is not None

    def observe(self, learner: Learner, samples: int, mean_loss: float,
                metric: float | None = None) -> dict[str, Any] | None:
        """Account for a learned message (its mean loss, and its mean accuracy for
        classification); start a job if a trigger fires."""
        self._since += samples
        drifted = self.drift is not None and self.drift.update(mean_loss)
        score = -mean_loss if metric is None or learner.network.task != "classification" \
            else metric
        flat = self.plateau is not None and self.plateau.update(score, samples)
        if self.every and self._since >= self.every:
            return self.start(learner, "every")
        if drifted:
            return self.start(learner, "drift")
        if flat:
            return self.start(learner, "plateau")
        return None

    def start(self, learner: Learner, reason: str) -> dict[str, Any]:
        """Start a job now (unless one is running or the reservoir is too small)."""
        if self.running:
            return {"ok": False, "code": "busy", "reason": "a refinement is already running"}
        reservoir = learner.reservoir
        if reservoir is None or len(reservoir) < self.min_samples:
            have = 0 if reservoir is None else len(reservoir)
            return {"ok": False, "code": "no_data", "reason": f"the replay reservoir holds "
                    f"{have} samples, refinement needs {self.min_samples}"}
        X, Y = (a.copy() for a in reservoir.data())
        snapshot = learner.clone(include_state=True)
        self._snapshot = snapshot.arena.params.copy()
        self._result, self._error, self._reason = None, None, reason
        self._since = 0
        self.started += 1
        self._thread = threading.Thread(target=self._run, args=(snapshot, X, Y), daemon=True,
                                        name="tweenstream-refine")
        self._thread.start()
        return {"ok": True, "code": "ok", "started": reason, "samples": len(X)}

    def _run(self, snapshot: Learner, X: np.ndarray, Y: np.ndarray) -> None:
        def report(p: dict[str, Any]) -> None:
            self.progress = p
            if self._halt.is_set():
                raise RuntimeError("the daemon is stopping")

        self.progress = None
        try:
            if self.server is not None:
                try:
                    self._result = self._remote(snapshot, X, Y, report)
                    return
                except TimeoutError:  # the server never took the job: do it here
                    self.fallbacks += 1
            self._result = refine(snapshot, X, Y, self.settings, progress=report)
        except Exception as err:
            self._error = f"{type(err).__name__}: {err}"

    def _remote(self, snapshot: Learner, X: np.ndarray, Y: np.ndarray, report: Any
                ) -> RefineResult:
        from tweenstream.stream.client import Control
        from tweenstream.stream.refine_server import cancel_quietly, refine_remote

        assert self.server is not None
        job = f"{uuid.uuid4().hex[:16]}-{self.started}"
        with Control(self.server, timeout=self.timeout, retries=1) as control:
            try:
                return refine_remote(control, job, snapshot, X, Y, self.settings,
                                     job_timeout=self.job_timeout, stop=self._halt,
                                     progress=report)
            except TimeoutError:  # in case the submit arrives late: it must not run twice
                cancel_quietly(control, job)
                raise

    def close(self) -> None:
        """Stop waiting on a remote job (the daemon is shutting down)."""
        self._halt.set()

    def poll(self, learner: Learner) -> dict[str, Any] | None:
        """If the job has finished, check its result and swap it in (or reject it)."""
        if self._thread is None or self._thread.is_alive():
            return None
        self._thread = None
        if self._error is not None or self._result is None:
            self.failed += 1
            self.last = {"event": "refine_failed", "reason": self._error or "no result"}
            return self.last
        result, snapshot, reservoir = self._result, self._snapshot, learner.reservoir
        if snapshot is None or reservoir is None:
            raise RuntimeError("a finished job always has its snapshot and reservoir")
        current = learner.arena.params.copy()
        event: dict[str, Any] = {"reason": self._reason, "held_out_before": result.before,
                                 "held_out_after": result.after, "epochs": result.epochs_run,
                                 "at": time.time()}
        Xn, Yn = reservoir.newest(min(self.check_rows, len(reservoir)))
        now, new = evaluate(learner, current, Xn, Yn), None
        if result.params.shape == current.shape:
            candidate = result.params + (current - snapshot)
            if np.isfinite(candidate).all():
                try:
                    new = evaluate(learner, candidate, Xn, Yn)
                except (FloatingPointError, ValueError):  # finite but far too large
                    new = None
        event.update(current=now, candidate=new)
        if new is None or not new["loss"] <= now["loss"]:  # NaN loss is rejected too
            self.rejected += 1
            event["event"] = "refine_rejected"
        else:
            learner.replace_params(candidate)
            learner.set_phase(self.after)
            for detector in (self.drift, self.plateau):
                if detector is not None:
                    detector.reset()  # the model changed: old statistics no longer apply
            self.accepted += 1
            event["event"] = "refine_accepted"
            event["phase"] = self.after
        self.last = event
        return event

    def summary(self) -> dict[str, Any]:
        return {"running": self.running, "started": self.started, "accepted": self.accepted,
                "rejected": self.rejected, "failed": self.failed,
                "fallbacks": self.fallbacks, "server": self.server,
                "progress": self.progress if self.running else None,
                "drift_detections": self.drift.detections if self.drift else 0,
                "plateau_detections": self.plateau.detections if self.plateau else 0,
                "last": self.last}
