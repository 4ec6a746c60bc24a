"""One model a daemon serves: its learner, streams, checkpoints, exports, refinement, metrics.

The daemon (``daemon.py``) owns the sockets and routes each message to a ``ServedModel`` by its
stream; everything else is per model. ``learn_messages`` takes the decoded learn and label
messages of one drain that are for this model, checks their values at once, admits each
(stream, seq) in order and learns consecutive learn messages of one stream in one
``learn_many`` call. The daemon may run ``learn_messages`` of different models in parallel
threads (the compiled step releases the GIL); everything it touches belongs to this model,
and the daemon's log is locked. Control commands and refinement's swap-back run on the loop
between drains, never while this model is learning.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tweenstream.latency import LatencyWindow
from tweenstream.modes import MODES
from tweenstream.runtime.learner import Learner
from tweenstream.stream import protocol
from tweenstream.stream.checkpoint import Checkpoint, CheckpointStore, CheckpointTooLarge
from tweenstream.stream.daemon_state import check_budget, parse_state, state_parts
from tweenstream.stream.labels import DelayedLabels
from tweenstream.stream.outputs import ExportJobs, OutputDir
from tweenstream.stream.protocol import Contract, ProtocolError
from tweenstream.stream.settings import ServeConfig
from tweenstream.stream.streams import StreamStats

PHASES = MODES  # set-phase accepts every mode; "hybrid" restarts the schedule
MAX_GROUP_ROWS = 4096  # rows of consecutive messages learned in one call
_PAGE = 1000  # streams per 'streams' reply, at most
Log = Callable[..., None]


def fail(code: str, reason: str) -> dict[str, Any]:
    """A refused control request's reply."""
    return {"ok": False, "code": code, "reason": reason}


def contract_of(learner: Learner) -> Contract:
    """What ``learner`` accepts on the wire.

    Examples
    --------
    >>> from tweenstream import Dense, Learner, Network
    >>> contract_of(Learner(Network(8, [Dense(4)])))
    Contract(n_inputs=8, n_outputs=4, classification=True, reconstruct=False)
    """
    net = learner.network
    return Contract(net.n_inputs, net.n_outputs, net.task == "classification",
                    bool(learner.config.reconstruct))


class ServedModel:
    """A named model of a daemon, with the settings of its own ``config`` (checkpoint folder
    and policy, output folder, stream and label limits, refinement).

    Examples
    --------
    >>> from tweenstream import Dense, Learner, Network
    >>> m = ServedModel("default", Learner(Network(8, [Dense(4)])), ServeConfig(),
    ...                 log=lambda event, **fields: None)
    >>> m.metric, m.summary()["samples_seen"]
    ('accuracy', 0)
    """

    def __init__(self, name: str, learner: Learner, config: ServeConfig, *, log: Log,
                 state: Checkpoint | None = None) -> None:
        self.name, self.learner, self.config = name, learner, config
        self._log = log
        self.contract = contract_of(learner)
        self.metric = "accuracy" if self.contract.classification else "mae"
        self.streams: dict[str, StreamStats] = {}
        self.rejected: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        net = learner.network
        if config.checkpoint_dir:  # before the label store is allocated
            check_budget(learner, config, config.label_capacity)
        self.labels = DelayedLabels(config.label_capacity, net.n_inputs, config.label_max_age)
        self.store = CheckpointStore(config.checkpoint_dir, config.keep_checkpoints,
                                     config.checkpoint_budget) if config.checkpoint_dir else None
        folder = config.output_dir or (str(Path(config.checkpoint_dir) / "exports")
                                       if config.checkpoint_dir else None)
        self.outputs = OutputDir(folder) if folder else None
        self.exports = ExportJobs(self.outputs, config.push_targets, config.push_timeout) \
            if self.outputs is not None else None
        self.refinement = config.refinement
        self.latency = LatencyWindow()  # predict requests on the control socket
        self.anomalies: deque[dict[str, Any]] = deque(maxlen=1000)  # events not yet published
        self._xbuf = np.zeros((0, net.n_inputs), dtype=np.float32)
        self._ybuf = np.zeros((0,) if self.contract.classification else (0, net.n_outputs),
                              dtype=np.int64 if self.contract.classification else np.float32)
        self._bx, self._by = self._xbuf.copy(), self._ybuf.copy()  # one drain's learn rows
        self._started = time.monotonic()
        self._served_before = 0.0  # seconds served before the checkpoint we resumed from
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._next_sweep = 0.0
        self.checkpoint_problem = ""  # why the last checkpoint asked for was not written
        if state is not None:
            self.streams, self._served_before = parse_state(state, self.labels)
            self.counters.update(state.extra.get("counters", {}))
            self.rejected.update(state.extra.get("rejected", {}))
        self.commands: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "metrics": self.cmd_metrics,
            "streams": self.cmd_streams, "acked": self.cmd_acked, "job": self.cmd_job,
            "set-phase": self.cmd_set_phase,
            "save": self.cmd_save, "export": self.cmd_export, "refine": self.cmd_refine,
            "reset-stream": self.cmd_reset_stream, "configure": self.cmd_configure,
        }

    def log(self, event: str, **fields: Any) -> None:
        """One line of the daemon's log, naming this model."""
        self._log(event, model=self.name, **fields)

    def clock(self) -> float:
        """Seconds this model has been served, across restarts (stream expiry runs on it)."""
        return self._served_before + time.monotonic() - self._started

    # --- learning ---------------------------------------------------------------------------
    def learn_messages(self, msgs: list[protocol.Message]) -> None:
        """Learn one drain's decoded ``learn`` and ``label`` messages for this model, in order.
        A message whose values are bad is refused alone and before admission (its seq can be
        sent again)."""
        learn = [m for m in msgs if m.kind == "learn"]
        xb, yb = self._rows(sum(m.rows for m in learn))
        at: dict[int, int] = {}  # id(message) -> its first row in xb / yb
        row = 0
        unlabelled = self.contract.reconstruct
        for m in learn:
            at[id(m)] = row
            np.copyto(xb[row:row + m.rows], m.X)  # type: ignore[arg-type]  # learn: X and Y
            if not unlabelled:
                np.copyto(yb[row:row + m.rows], m.Y)  # type: ignore[arg-type]
            row += m.rows
        bad: set[int] = set()
        try:
            protocol.check_values(xb[:row], None if unlabelled else yb[:row], self.contract)
        except ProtocolError:  # the rare case: find the bad messages one by one
            for m in learn:
                try:
                    protocol.check_values(m.X, m.Y, self.contract)
                except ProtocolError as err:
                    self.reject(err, "data")
                    bad.add(id(m))
        start = stop = 0  # the rows of the group being gathered
        stats: StreamStats | None = None
        name = ""
        sizes: list[int] = []  # rows of each message in the group
        for m in msgs:
            if m.kind == "label":
                self._learn_group(stats, xb[start:stop], yb[start:stop], sizes, name)
                sizes = []
                self.apply(m)
                continue
            if id(m) in bad:
                continue
            s = self._admit(m)
            if s is None:
                continue
            first = at[id(m)]
            if sizes and (s is not stats or first != stop or stop - start >= MAX_GROUP_ROWS):
                self._learn_group(stats, xb[start:stop], yb[start:stop], sizes, name)
                sizes = []
            if not sizes:
                start, stats, name = first, s, m.stream
            stop = first + m.rows
            sizes.append(m.rows)
        self._learn_group(stats, xb[start:stop], yb[start:stop], sizes, name)

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
                self.sweep(time.monotonic(), force=True)
            if len(self.streams) >= self.config.max_streams:
                self.reject(ProtocolError("too_many_streams", f"{len(self.streams)} streams "
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
                self.reject(ProtocolError("seq_jump", f"stream {msg.stream!r}: seq {msg.seq} "
                            f"jumps more than {self.config.max_seq_jump} past "
                            f"{stats.seq.last}"), "data")
                return None
        stats.active_at = self.clock()  # refused messages do not keep a stream alive
        return stats

    def _learn_group(self, stats: StreamStats | None, X: np.ndarray, Y: np.ndarray,
                     sizes: list[int], stream: str = "") -> None:
        """Learn the rows of admitted messages of one stream (``sizes``: rows per message) in
        one call. If the learner refuses them (nothing was learned: it checks every row first;
        the protocol has checked what it can judge, so this is e.g. a token id out of range),
        learn them message by message, so that only the bad message is refused."""
        if not sizes or stats is None:
            return
        try:
            self._learn(stats, X, Y, len(sizes), stream)
            return
        except ValueError as err:
            if len(sizes) == 1:
                self.reject(ProtocolError("bad_value", str(err)), "data")
                return
        at = 0
        for n in sizes:
            try:
                self._learn(stats, X[at:at + n], Y[at:at + n], 1, stream)
            except ValueError as err:
                self.reject(ProtocolError("bad_value", str(err)), "data")
            at += n

    def _learn(self, stats: StreamStats, xb: np.ndarray, yb: np.ndarray, messages: int,
               stream: str = "") -> None:
        """Learn rows of one stream's messages and account for them; ``ValueError`` (nothing
        learned) if the learner refuses them. An autoencoder's rows are scored first when
        anomaly events are asked for (``anomaly_threshold``)."""
        before = self.learner.totals()
        if self.contract.reconstruct:
            if self.config.anomaly_threshold is not None:
                self._watch(xb, stream)
            else:
                self.learner.learn_many(xb)
        else:
            self.learner.learn_many(xb, yb)
        after = self.learner.totals()
        n = len(xb)
        scored = after[0] - before[0]
        stats.record(scored, after[1] - before[1], after[2] - before[2])
        if self.refinement is not None and scored:
            started = self.refinement.observe(self.learner, scored,
                                              (after[2] - before[2]) / scored,
                                              (after[1] - before[1]) / scored)
            if started and started["ok"]:
                self.log("refine_started", **started)
        self.counters["samples"] += n
        self.counters["messages"] += messages
        self._since_checkpoint += n

    def apply(self, msg: protocol.Message) -> None:
        """Learn from one decoded label or learn_predict message (a learn_predict's values were
        checked by ``decode``; a label's are checked here, before its seq is admitted)."""
        if msg.kind == "label":
            try:
                protocol.check_values(None, msg.Y, self.contract)
            except ProtocolError as err:
                self.reject(err, "data")
                return
        stats = self._admit(msg)
        if stats is None:
            return
        X: np.ndarray | None = msg.X
        Y: np.ndarray | None = msg.Y
        if self.contract.reconstruct and X is not None:  # an autoencoder's learn_predict
            xb, yb = self._buffers(len(X))
            np.copyto(xb, X)
            self._learn_group(stats, xb, yb, [len(X)], msg.stream)
            return
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

    def _watch(self, X: np.ndarray, stream: str) -> None:
        """Learn an autoencoder's rows one by one, each scored first (test, then train); those
        at or above ``anomaly_threshold`` become anomaly events (kept for the metrics socket,
        at most 1,000 waiting). The rows' values were checked, so none is refused midway."""
        threshold = self.config.anomaly_threshold
        seen = int(self.learner.state()["samples_seen"])
        for i, x in enumerate(X):
            score = self.learner.score_one(x)
            self.learner.learn_one(x)
            if threshold is not None and score >= threshold:
                self.counters["anomalies"] += 1
                self.anomalies.append({"model": self.name, "stream": stream,
                                       "sample": seen + i, "score": round(score, 6)})

    def predict(self, msg: protocol.Message) -> list[bytes]:
        """The reply to a decoded ``predict`` or ``learn_predict`` message: probabilities,
        outputs, or (an autoencoder) anomaly scores, one per row."""
        if msg.X is None:
            raise RuntimeError("decode returned a predict message without X")
        xb, _ = self._buffers(len(msg.X))
        np.copyto(xb, msg.X)
        try:
            if self.contract.reconstruct:
                out = np.array([[self.learner.score_one(x)] for x in xb], np.float32)
            else:
                out = (self.learner.predict_proba_many(xb) if self.contract.classification
                       else self.learner.predict_many(xb).reshape(len(xb), -1))
        except (ValueError, FloatingPointError) as err:  # e.g. token ids out of range
            self.reject(ProtocolError("bad_value", str(err)), "control")
            return protocol.error_reply("bad_value", str(err))
        if msg.kind == "predict" and msg.ids is not None:
            self.labels.put(msg.ids, xb)
        self.counters["predictions"] += len(xb)
        reply = protocol.prediction_reply(out)
        if msg.kind == "learn_predict":
            self.apply(msg)
        return reply

    def _buffers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Writable buffers for n rows; they grow to the largest message seen, never shrink."""
        if n > len(self._xbuf):
            self._xbuf = np.zeros((n, self._xbuf.shape[1]), dtype=np.float32)
            self._ybuf = np.zeros((n, *self._ybuf.shape[1:]), dtype=self._ybuf.dtype)
        return self._xbuf[:n], self._ybuf[:n]

    def reject(self, err: ProtocolError, where: str) -> None:
        """Count a refused message by reason; log the first ten and every thousandth."""
        self.rejected[err.code] += 1
        count = self.rejected[err.code]
        if count <= 10 or count % 1000 == 0:  # one line per event, not a flood per message
            self.log("rejected", socket=where, code=err.code, reason=err.reason, count=count)

    def sweep(self, now: float, force: bool = False) -> None:
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

    # --- checkpoints, refinement ----------------------------------------------------------
    def checkpoint_due(self, now: float) -> bool:
        """True once ``checkpoint_every`` samples or ``checkpoint_interval`` s have passed
        since the last checkpoint (and something was learned since)."""
        if self.store is None or self._since_checkpoint == 0:
            return False
        return (self._since_checkpoint >= self.config.checkpoint_every
                or now - self._last_checkpoint >= self.config.checkpoint_interval)

    def checkpoint(self, why: str, extra: dict[str, Any] | None = None) -> Path | None:
        """Write the learner with its streams, labels and counters (and ``extra``); None if
        the checkpoint would exceed its byte budget (counted and logged)."""
        if self.store is None:
            raise RuntimeError("no checkpoint store")
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        parts, arrays = state_parts(self.counters, self.rejected, self.clock(), self.streams,
                                    self.labels)
        try:
            path = self.store.write(self.learner, {**parts, **(extra or {})}, arrays)
        except CheckpointTooLarge as err:
            self.counters["checkpoints_refused"] += 1
            self.checkpoint_problem = f"over its checkpoint budget: {err}"
            self.log("checkpoint_refused", why=why, reason=str(err))
            return None
        for stats in self.streams.values():
            stats.durable = stats.seq.applied_through()
        self.log("checkpoint", path=str(path), why=why,
                 samples_seen=self.learner.state()["samples_seen"])
        return path

    def checkpoint_age(self) -> float | None:
        """Seconds since the last checkpoint (None without a checkpoint folder)."""
        if self.store is None:
            return None
        return round(time.monotonic() - self._last_checkpoint, 3)

    def poll_refinement(self) -> None:
        """Swap a finished refinement job's result in (or count its failure)."""
        if self.refinement is None:
            return
        try:
            event = self.refinement.poll(self.learner)
        except Exception as err:
            self.refinement.failed += 1
            event = {"event": "refine_failed", "reason": f"{type(err).__name__}: {err}"}
        if event is not None:
            self.log(event["event"], **{k: v for k, v in event.items() if k != "event"})

    def close(self) -> None:
        """Abandon a refinement job still out (it is not waited on)."""
        if self.refinement is not None:
            self.refinement.close()

    # --- what is reported -------------------------------------------------------------------
    def recent_streams(self) -> dict[str, Any]:
        """The ``status_streams`` most recently active streams (status stays small)."""
        shown = sorted(self.streams.items(), key=lambda kv: kv[1].active_at,
                       reverse=True)[:self.config.status_streams]
        return {k: v.summary(self.metric) for k, v in shown}

    def summary(self) -> dict[str, Any]:
        """A few figures per model, for the daemon's ``status`` and ``tweenstream top``."""
        st = self.learner.state()
        keys = ("mode", "phase", "samples_seen", "explosions", "rollbacks",
                f"running_{self.metric}", "running_loss")
        return {**{k: st[k] for k in keys}, "samples": self.counters["samples"],
                "messages": self.counters["messages"], "streams_total": len(self.streams),
                "rejected": sum(self.rejected.values()),
                "refinement": self.refinement.summary() if self.refinement else None,
                "checkpoint_age_s": self.checkpoint_age()}

    def status(self) -> dict[str, Any]:
        """This model's part of the daemon's ``status`` reply."""
        st = self.learner.state()
        keys = ("mode", "phase", "samples_seen", "updates", "adaptive_rate", "explosions",
                "rollbacks", "storms", "rejected", "switched_at", "races",
                "races_won_by_backprop", f"running_{self.metric}",
                "running_loss")
        return {"model": self.name, **{k: st[k] for k in keys},
                "streams": self.recent_streams(), "streams_total": len(self.streams),
                "limits": self._limits(),
                "exports": self.exports.summary()[-1:] if self.exports else [],
                "refinement": self.refinement.summary() if self.refinement else None,
                "predict_latency": self.latency.summary(),
                "settings": asdict(self.learner.config),
                "checkpoint_age_s": self.checkpoint_age()}

    def _limits(self) -> dict[str, Any]:
        c = self.config
        return {"max_streams": c.max_streams, "stream_ttl": c.stream_ttl,
                "max_seq_jump": c.max_seq_jump, "strict_order": c.strict_order,
                "label_capacity": c.label_capacity, "checkpoint_budget": c.checkpoint_budget,
                "max_rows": c.limits.max_rows, "status_streams": c.status_streams}

    def metrics(self) -> dict[str, Any]:
        """Everything measured: learner state, recent streams, counters, label store."""
        return {"learner": self.learner.state(), "streams": self.recent_streams(),
                "streams_total": len(self.streams), "counters": dict(self.counters),
                "rejected_messages": dict(self.rejected), "labels": self.labels.stats(),
                "refinement": self.refinement.summary() if self.refinement else None,
                "predict_latency": self.latency.summary(),
                "checkpoint_age_s": self.checkpoint_age()}

    # --- commands (the daemon resolves the model, checks the role, and does status and
    # checkpoint itself) ---------------------------------------------------------------------
    def cmd_metrics(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "code": "ok", "model": self.name, **self.metrics()}

    def cmd_streams(self, request: dict[str, Any]) -> dict[str, Any]:
        """A page of streams, by name: ``offset`` and ``limit`` (at most 1,000)."""
        offset, limit = request.get("offset", 0), request.get("limit", _PAGE)
        if type(offset) is not int or type(limit) is not int or offset < 0 \
                or not 0 < limit <= _PAGE:
            raise ValueError(f"offset must be an int >= 0 and limit an int in 1..{_PAGE}")
        names = sorted(self.streams)[offset:offset + limit]
        return {"ok": True, "code": "ok", "model": self.name, "total": len(self.streams),
                "offset": offset,
                "streams": {k: self.streams[k].summary(self.metric) for k in names}}

    def cmd_acked(self, request: dict[str, Any]) -> dict[str, Any]:
        """Where a producer must resend from: what was applied, and what a checkpoint holds."""
        name = request.get("stream", "default")
        stats = self.streams.get(name)
        if stats is None:
            return {"ok": True, "code": "ok", "stream": name, "known": False, "last_seq": -1,
                    "applied_through": -1, "durable_through": -1}
        return {"ok": True, "code": "ok", "stream": name, "known": True,
                "last_seq": stats.seq.last, "applied_through": stats.seq.applied_through(),
                "durable_through": stats.durable if self.store is not None
                else stats.seq.applied_through()}

    def cmd_job(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self.exports.get(request.get("job")) if self.exports else None
        if job is None:
            return fail("unknown_job", f"no export job {request.get('job')!r}")
        return {"ok": True, "code": "ok", **job}

    def cmd_configure(self, request: dict[str, Any]) -> dict[str, Any]:
        """Change learner settings (``settings``: a map of TweenConfig fields) of the running
        model, with the checks of ``Learner.configure``; everything learned is kept."""
        settings = request.get("settings")
        if not isinstance(settings, dict) or not settings \
                or not all(isinstance(k, str) for k in settings):
            return fail("bad_request", "settings must be a non-empty map of TweenConfig "
                        "fields to values, e.g. {\"learning_rate\": 0.01}")
        try:
            self.learner.configure(**settings)
        except (TypeError, ValueError) as err:
            return fail("bad_request", str(err))
        self.log("configured", settings=settings)
        return {"ok": True, "code": "ok", "settings": asdict(self.learner.config)}

    def cmd_set_phase(self, request: dict[str, Any]) -> dict[str, Any]:
        phase = request.get("phase")
        if phase not in PHASES:
            return fail("bad_request", f"phase must be one of {', '.join(PHASES)}, "
                        f"found {phase!r}")
        self.learner.set_phase(phase)
        self.learner.warm()  # compile the phase's engine here, not in a learner thread
        self.log("phase", phase=phase)
        return {"ok": True, "code": "ok", "phase": self.learner.state()["phase"]}

    def cmd_save(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.outputs is None:
            return fail("no_output_dir", "the daemon was started without --output-dir or "
                        "--checkpoint-dir")
        path = self.outputs.path(request.get("name"), ".tsm", request.get("overwrite") is True)
        self.learner.save(path)
        self.log("saved", path=str(path))
        return {"ok": True, "code": "ok", "name": path.name, "path": str(path)}

    def cmd_export(self, request: dict[str, Any]) -> dict[str, Any]:
        """Start an ONNX export (with its parity check, and an optional push to a configured
        edge target) off the loop; ``job`` tells how it ended."""
        if self.exports is None:
            return fail("no_output_dir", "the daemon was started without --output-dir or "
                        "--checkpoint-dir")
        try:
            job = self.exports.start(self.learner, request.get("name"), request.get("push"),
                                     request.get("overwrite") is True)
        except RuntimeError as err:
            return fail("busy", str(err))
        self.log("export_started", job=job, name=request.get("name"), push=request.get("push"))
        return {"ok": True, "code": "ok", "job": job, "state": "running"}

    def cmd_refine(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.refinement is None:
            return fail("no_refinement", "the daemon was started without refinement settings")
        reply = self.refinement.start(self.learner, "command")
        if reply["ok"]:
            self.log("refine_started", **reply)
        return reply

    def cmd_reset_stream(self, request: dict[str, Any]) -> dict[str, Any]:
        """Forget a stream's sequence state and metrics (e.g. after its producer restarted)."""
        name = request.get("stream")
        if not isinstance(name, str) or name not in self.streams:
            return fail("unknown_stream", f"no stream {name!r}")
        del self.streams[name]
        self.log("stream_reset", stream=name)
        return {"ok": True, "code": "ok", "stream": name}
