"""The streaming daemon: learns test-then-train from ZeroMQ streams, never dies on bad input.

One daemon serves one model or many (``served.py``: a ``ServedModel`` each, with its own
checkpoints, exports, refinement and metrics). A message goes to the model its header names
(``model``) or, usually, to the model its ``stream`` is routed to (``routing.py``: exact names,
then patterns). Sockets (endpoints from ``ServeConfig``):
- data (PULL, or SUB): ``learn`` and ``label`` messages (docs/protocol.md);
- control (ROUTER): read commands (``status``, ``metrics``, ``streams``, ``acked``, ``job``,
  ``models``), admin commands (``checkpoint``, ``set-phase``, ``save``, ``export``, ``refine``,
  ``reset-stream``, ``configure``, ``add-model``, ``remove-model``, ``shutdown``; see
  ``security.py`` for who may send them), and ``predict`` / ``learn_predict`` messages, which
  get predictions back. Commands about one model take its name (``model``); with one model
  it may be left out;
- metrics (PUB, optional): a ``metrics`` frame and a msgpack map every ``metrics_interval`` s.

Cores: the loop receives and decodes; the messages of one drain that are for different models
are learned in parallel by a pool of ``learner_threads`` threads (default: one per core),
each model's messages in order by one thread, and the compiled step releases the GIL. The loop
waits for the drain's learning to end before it answers control requests, so a command never
sees a model mid-step.

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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

import zmq

from tweenstream import __version__
from tweenstream.runtime.learner import Learner
from tweenstream.stream import protocol
from tweenstream.stream.checkpoint import Checkpoint, CheckpointStore
from tweenstream.stream.daemon_state import check_state
from tweenstream.stream.intake import Intake
from tweenstream.stream.model_plans import REGISTRY, ModelPlan, read_registry, write_registry
from tweenstream.stream.protocol import Contract, ProtocolError
from tweenstream.stream.routing import Routes, check_model_name
from tweenstream.stream.security import (
    READ,
    check_control,
    claim_ipc,
    default_control,
    restrict_ipc,
)
from tweenstream.stream.served import MAX_GROUP_ROWS, PHASES, ServedModel, fail
from tweenstream.stream.settings import ServeConfig

__all__ = ["MAX_GROUP_ROWS", "PHASES", "Daemon", "ModelPlan", "ServeConfig"]

# commands about one model (the rest are about the daemon)
_MODEL_COMMANDS = ("status", "metrics", "streams", "acked", "job", "checkpoint", "set-phase",
                   "save", "export", "refine", "reset-stream", "configure")
Builder = Callable[[str, dict[str, Any]], ModelPlan]


class Daemon:
    """Learners served over ZeroMQ. ``run()`` blocks until ``shutdown`` or a signal.

    ``Daemon(learner, config)`` serves one model (named ``default``, every stream routed to
    it); ``Daemon.serve(plans, config)`` serves named models, each resumed from its own
    checkpoint folder. ``builder`` turns an ``add-model`` request's table into a plan.

    Examples
    --------
    >>> from tweenstream import Dense, Learner, Network
    >>> d = Daemon(Learner(Network(8, [Dense(4)])), ServeConfig(data="inproc://d",
    ...            control="inproc://c"))
    >>> d.contract, list(d.models)
    (Contract(n_inputs=8, n_outputs=4, classification=True, reconstruct=False), ['default'])
    """

    def __init__(self, learner: Learner | None, config: ServeConfig, *,
                 log: TextIO | None = None, state: Checkpoint | None = None,
                 builder: Builder | None = None) -> None:
        self.config = config
        self.control_endpoint = config.control or default_control()
        self._control_warning = check_control(self.control_endpoint, config.curve,
                                              config.insecure_control)
        for endpoint in (self.control_endpoint, config.metrics,
                         None if config.subscribe else config.data):
            if endpoint:
                claim_ipc(endpoint)
        self.models: dict[str, ServedModel] = {}
        self.routes = Routes()
        self.builder = builder
        self.declared: set[str] = set()  # models of the config (not recorded in the registry)
        self.added: dict[str, dict[str, Any]] = {}  # models added live: name -> their table
        self.own_rejected: Counter[str] = Counter()  # refused before reaching a model
        self.own_counters: Counter[str] = Counter()
        self._log_file = log if log is not None else sys.stderr
        self._log_lock = threading.Lock()
        self._stop = threading.Event()
        self.ready = threading.Event()  # set once the sockets are bound
        self.bound: dict[str, str] = {}  # actual endpoints (a tcp port 0 / * becomes a number)
        self.exporter: Any = None  # the Prometheus endpoint, while serving with one
        self._pool = ThreadPoolExecutor(config.learner_threads, "learner") \
            if config.learner_threads > 1 else None
        self._timed: ServedModel | None = None  # the model of the prediction being answered
        self._started = time.monotonic()
        self._admin = True  # the role of the control request being handled
        self.intake = Intake(Contract(1, 2, True), config.limits, config.rcvhwm,
                             config.queue_bytes)
        self._commands: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            **{cmd: self._model_command for cmd in _MODEL_COMMANDS},
            "shutdown": self._cmd_shutdown, "models": self._cmd_models,
            "add-model": self._cmd_add_model, "remove-model": self._cmd_remove_model,
        }
        if learner is not None:
            self.add(ServedModel("default", learner, config, log=self.log, state=state),
                     ("*",))
            if state is not None:
                self.own_counters.update(state.extra.get("daemon_counters", {}))
                self.own_rejected.update(state.extra.get("daemon_rejected", {}))
            self.declared.add("default")
            self._size_intake()

    # --- lifecycle ------------------------------------------------------------------------
    @classmethod
    def resume(cls, fallback: Callable[[], Learner], config: ServeConfig, *,
               log: TextIO | None = None) -> Daemon:
        """One model from the newest valid checkpoint in ``config.checkpoint_dir``, else
        ``fallback()``."""
        return cls.serve({"default": ModelPlan(fallback, config)}, config, log=log)

    @classmethod
    def serve(cls, plans: dict[str, ModelPlan], config: ServeConfig, *,
              log: TextIO | None = None, builder: Builder | None = None) -> Daemon:
        """A daemon of the named models of ``plans``, each resumed from the newest valid
        checkpoint of its own folder (else started fresh), plus the models an ``add-model``
        command added before a restart (recorded in ``CHECKPOINT_DIR/models.json``; they need
        ``builder``).

        Examples
        --------
        >>> from tweenstream import Dense, Learner, Network
        >>> from tweenstream.stream.model_plans import own_config
        >>> base = ServeConfig(data="inproc://m", control="inproc://mc")
        >>> plans = {name: ModelPlan(lambda: Learner(Network(4, [Dense(2)])),
        ...                          own_config(base, name), (route,))
        ...          for name, route in (("a", "s-*"), ("b", "*"))}
        >>> import io
        >>> d = Daemon.serve(plans, base, log=io.StringIO())
        >>> d.routes.model_for("s-1"), d.routes.model_for("t")
        ('a', 'b')
        """
        if not plans:
            raise ValueError("no models to serve")
        daemon = cls(None, config, log=log, builder=builder)
        added = read_registry(config.checkpoint_dir)
        for name, table in added.items():
            if name in plans:
                daemon.log("model_not_restored", model=name,
                           reason="the config declares a model of this name; it wins")
                continue
            if builder is None:
                raise ValueError(f"{config.checkpoint_dir}: models.json lists models added "
                                 "live, and this daemon has no builder to restore them")
            daemon.added[name] = table
        for name, plan in plans.items():
            daemon.declared.add(name)
            daemon._load(name, plan)
        for name, table in daemon.added.items():
            try:
                daemon._load(name, builder(name, table))  # type: ignore[misc]  # checked above
            except (ValueError, OSError) as err:  # the others are served; its files are kept
                daemon.log("model_not_restored", model=name, reason=str(err),
                           registry=str(Path(config.checkpoint_dir or "") / REGISTRY))
        daemon._size_intake()
        return daemon

    def _load(self, name: str, plan: ModelPlan, strict: bool = False) -> ServedModel:
        """Model ``name`` from its newest valid checkpoint, else fresh; added and routed. A
        checkpoint of another network than the plan's is logged (the checkpoint wins, as for
        one model), or with ``strict`` refused (``ValueError``, nothing changed)."""
        check_model_name(name)
        found = Checkpoint(None, {}, {}, [])
        removed = 0
        if plan.config.checkpoint_dir:
            store = CheckpointStore(plan.config.checkpoint_dir, plan.config.keep_checkpoints,
                                    plan.config.checkpoint_budget)
            removed = store.removed_temporaries
            found = store.latest(check=check_state)
        learner = found.learner
        if learner is not None and plan.network is not None \
                and learner.network.to_dict() != plan.network.to_dict():
            if strict:
                raise ValueError(f"model {name!r}: its checkpoint folder holds a model of "
                                 "another network than the one asked for; use another name")
            self.log("network_differs", model=name,
                     reason="the checkpoint's network is served, not the one declared")
        model_learner = learner or plan.learner()
        if plan.settings:  # a resumed or loaded model takes the settings given too
            model_learner.configure(**plan.settings)
        model = ServedModel(name, model_learner, plan.config, log=self.log,
                            state=found if learner is not None else None)
        self.add(model, plan.routes)
        if learner is not None:  # counts only grow: the newest of the checkpoints' is the max
            for own, key in ((self.own_counters, "daemon_counters"),
                             (self.own_rejected, "daemon_rejected")):
                for k, v in found.extra.get(key, {}).items():
                    own[k] = max(own[k], v)
        if removed:
            model.log("temporaries_removed", count=removed)
        for problem in found.problems:
            model.log("checkpoint_corrupt", reason=problem)
        if learner is not None:
            model.log("resumed", samples_seen=learner.state()["samples_seen"],
                      streams=len(model.streams), labels_waiting=len(model.labels))
        return model

    def add(self, model: ServedModel, routes: Iterable[str]) -> None:
        """Serve ``model`` under its name, for the streams ``routes`` name. Models share no
        checkpoint folder and no refinement (``ValueError`` otherwise)."""
        if model.name in self.models:
            raise ValueError(f"a model named {model.name!r} is already served")
        for other in self.models.values():
            if model.store is not None and other.store is not None \
                    and model.store.folder.resolve() == other.store.folder.resolve():
                raise ValueError(f"models {other.name!r} and {model.name!r} would share the "
                                 f"checkpoint folder {model.store.folder}")
            if model.refinement is not None and model.refinement is other.refinement:
                raise ValueError(f"models {other.name!r} and {model.name!r} would share one "
                                 "Refinement; give each model its own")
        self.routes.add(model.name, list(routes))
        self.models[model.name] = model

    def _size_intake(self) -> None:
        """Socket limits wide enough for every model's largest message."""
        contracts = [m.contract for m in self.models.values()]
        regression = [c.n_outputs for c in contracts if not c.classification]
        widest = Contract(max(c.n_inputs for c in contracts), max([2, *regression]),
                          not regression)
        self.intake = Intake(widest, self.config.limits, self.config.rcvhwm,
                             self.config.queue_bytes)

    def stop(self) -> None:
        """Ask the loop to stop after the current message (safe from any thread or signal)."""
        self._stop.set()

    def run(self) -> int:
        """Serve until stopped; then checkpoint, close sockets with linger, return 0."""
        for model in self.models.values():
            model.learner.warm()  # compile before the first message, not during it
            if model.outputs is not None:
                model.outputs.clean()
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
            for name in self.models:
                exporter.add_model(name)
            self.bound["prometheus"] = exporter.url
            exporter.update(self._snapshot())
        self.intake.watch(data)
        self._install_signals()
        poller = zmq.Poller()
        poller.register(control, zmq.POLLIN)
        poller.register(data, zmq.POLLIN)
        if self._control_warning:
            self.log("insecure_control", warning=self._control_warning)
        for name, model in self.models.items():
            self.log("serving", version=__version__, **self.bound, model=name,
                     routes=self.routes.of(name), network=model.learner.network.to_dict(),
                     mode=model.learner.config.mode, settings=self.config.describe())
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
                for model in list(self.models.values()):
                    model.poll_refinement()
                    if model.checkpoint_due(now):
                        self._checkpoint(model, "periodic")
                    model.sweep(now)
                if now >= next_metrics:
                    if metrics is not None:
                        metrics.send_multipart([b"metrics", protocol.pack(self.metrics())])
                        self._publish_anomalies(metrics)
                    if exporter is not None:
                        exporter.update(self._snapshot())
                    next_metrics = now + self.config.metrics_interval
                self._status_line(now)
        finally:
            for model in self.models.values():
                model.close()  # a refinement job still out is abandoned, not waited on
            poller.unregister(data)
            self.intake.unwatch(data)
            data.close(linger=0)  # stop intake first: queued messages are not ours yet
            for model in self.models.values():
                if model.store is not None:
                    self._checkpoint(model, "shutdown")  # a failure is logged; others go on
            for sock in (control, metrics):
                if sock is not None:
                    sock.close(linger=self.config.linger_ms)
            if exporter is not None:
                exporter.close()
            if auth is not None:
                auth.stop()
            if self._pool is not None:
                self._pool.shutdown()
            ctx.term()
            self.log("stopped", samples_seen=sum(m.learner.state()["samples_seen"]
                                                 for m in self.models.values()))
        return 0

    def _checkpoint(self, model: ServedModel, why: str) -> Any:
        """Checkpoint ``model`` with the daemon's own counts (messages refused before they
        reached a model; a restart takes the largest of its models'). A write that fails (a
        full disk) is counted and logged, never raised: the other models and the loop go on;
        None then, as for a checkpoint over its budget."""
        extra = {"daemon_counters": dict(self.own_counters),
                 "daemon_rejected": dict(self.own_rejected)}
        try:
            return model.checkpoint(why, extra)
        except OSError as err:
            model.counters["checkpoints_failed"] += 1
            model.checkpoint_problem = f"the write failed: {err}"
            model.log("checkpoint_failed", why=why, reason=str(err))
            return None

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

    # --- the one model, for a daemon that serves one ----------------------------------------
    def _single(self) -> ServedModel:
        if len(self.models) != 1:
            raise ValueError(f"this daemon serves {len(self.models)} models "
                             f"({', '.join(self.models)}); use daemon.models[NAME]")
        return next(iter(self.models.values()))

    @property
    def learner(self) -> Learner:
        """The learner of the one model served."""
        return self._single().learner

    @property
    def contract(self) -> Contract:
        """What the one model served accepts."""
        return self._single().contract

    @property
    def streams(self) -> dict[str, Any]:
        """The streams of the one model served."""
        return self._single().streams

    @property
    def labels(self) -> Any:
        """The delayed-label store of the one model served."""
        return self._single().labels

    @property
    def counters(self) -> Counter[str]:
        """Every count of the daemon and its models, summed."""
        return _total([self.own_counters, *(m.counters for m in self.models.values())])

    @property
    def rejected(self) -> Counter[str]:
        """Refused messages by reason, of the daemon and its models, summed."""
        return _total([self.own_rejected, *(m.rejected for m in self.models.values())])

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

    def _route(self, head: protocol.Header) -> ServedModel:
        """The model a message is for: the one its header names, else its stream's route."""
        name = head.model if head.model is not None else self.routes.model_for(head.stream)
        model = self.models.get(name) if name is not None else None
        if model is None:
            why = f"no model named {name!r}" if head.model is not None \
                else f"no route for stream {head.stream!r}"
            raise ProtocolError("no_model", f"{why}; this daemon serves "
                                f"{', '.join(self.models) or 'no models'}")
        return model

    def _on_batch(self, batch: list[list[Any]]) -> None:
        """Decode and route every message, then learn each model's messages in the order
        received (``ServedModel.learn_messages``), different models in parallel threads."""
        groups: dict[str, list[protocol.Message]] = {}
        limits = self.config.limits
        for frames in batch:
            model = None
            try:
                buffers = [f.buffer for f in frames]
                head = protocol.read_header(buffers, limits)
                if head.kind not in ("learn", "label"):
                    raise ProtocolError("unknown_kind", f"{head.kind} belongs on the control "
                                        "socket")
                model = self._route(head)
                msg = protocol.decode_body(head, buffers, model.contract, limits)
            except ProtocolError as err:
                self._reject(err, "data", model)
                continue
            groups.setdefault(model.name, []).append(msg)
        work = [(self.models[name], msgs) for name, msgs in groups.items()]
        if len(work) > 1 and self._pool is not None:
            list(self._pool.map(_learn_safely, work))
        else:
            for item in work:
                _learn_safely(item)

    def _reject(self, err: ProtocolError, where: str, model: ServedModel | None = None
                ) -> None:
        if model is not None:
            model.reject(err, where)
            return
        self.own_rejected[err.code] += 1
        count = self.own_rejected[err.code]
        if count <= 10 or count % 1000 == 0:  # one line per event, not a flood per message
            self.log("rejected", socket=where, code=err.code, reason=err.reason, count=count)

    # --- control -------------------------------------------------------------------------
    def _on_control(self, sock: zmq.Socket, frames: list[Any]) -> None:
        """Exactly one reply per request, whatever the request holds."""
        start = time.perf_counter()
        envelope, body = protocol.split_envelope([f.buffer for f in frames])
        self._timed = None
        try:
            self._admin = self.config.curve is None or self.config.curve.is_admin(
                _user_id(frames[-1]))
            reply = self._control_reply(body)
        except Exception as err:  # a bug must not cost the reply: answer it, count it
            self._reject(ProtocolError("internal_error", repr(err)), "control")
            reply = protocol.error_reply("internal_error", f"{type(err).__name__} (logged)")
        sock.send_multipart([*envelope, *reply])
        timed = self._timed
        if timed is not None:  # a prediction: from receive to send
            seconds = time.perf_counter() - start
            timed.latency.record(seconds)
            if self.exporter is not None:
                self.exporter.observe_predict(seconds, timed.name)

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
        return self._predict(body)

    def _command(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        handler = self._commands.get(cmd) if isinstance(cmd, str) else None
        if handler is None:
            shown = repr(cmd)[:80]
            return fail("unknown_command", f"unknown command {shown}; known: "
                        f"{', '.join(self._commands)}")
        if cmd not in READ and not self._admin:  # anything not known as read is admin
            return fail("forbidden", f"{cmd!r} is an admin command and this client's key is "
                        "not in --admin-keys")
        try:
            return handler(request)
        except (ValueError, TypeError, OSError) as err:
            return fail("bad_request", str(err))

    def _model_command(self, request: dict[str, Any]) -> dict[str, Any]:
        """A command about one model: the one named, the one a ``stream`` is routed to
        (``acked``, ``reset-stream``), or the only one. ``status``, ``metrics`` and
        ``checkpoint`` without a model cover the whole daemon."""
        cmd, name = request["cmd"], request.get("model")
        stream = request.get("stream", "default")
        if cmd in ("acked", "reset-stream") and not isinstance(stream, str):
            raise ValueError("stream must be a string")
        if name is None and cmd in ("acked", "reset-stream") and len(self.models) > 1:
            name = self.routes.model_for(stream)
            if name is None:
                if cmd == "acked":
                    return {"ok": True, "code": "ok", "stream": stream, "known": False,
                            "last_seq": -1, "applied_through": -1, "durable_through": -1}
                return fail("unknown_stream", f"no stream {stream!r}")
        if name is None and cmd in ("status", "metrics"):
            return self._cmd_status(None) if cmd == "status" else self._cmd_metrics()
        if name is None and cmd == "checkpoint" and len(self.models) > 1:
            return self._cmd_checkpoint_all()
        if name is None:
            if len(self.models) != 1:
                return fail("model_required", f"this daemon serves {len(self.models)} models; "
                            f"name one with model: {', '.join(self.models)}")
            name = next(iter(self.models))
        model = self.models.get(name) if isinstance(name, str) else None
        if model is None:
            return fail("unknown_model", f"no model {name!r}; this daemon serves "
                        f"{', '.join(self.models) or 'no models'}")
        if cmd == "status":
            return self._cmd_status(model)
        if cmd == "checkpoint":
            if model.store is None:
                return fail("no_checkpoint_dir", "the daemon was started without "
                            "--checkpoint-dir")
            path = self._checkpoint(model, "command")
            if path is None:
                return fail("checkpoint_failed", f"model {model.name!r}: "
                            f"{model.checkpoint_problem}")
            return {"ok": True, "code": "ok", "model": model.name, "path": str(path)}
        return model.commands[cmd](request)

    def _predict(self, body: list[Any]) -> list[bytes]:
        model = None
        try:
            head = protocol.read_header(body, self.config.limits)
            if head.kind not in ("predict", "learn_predict"):
                raise ProtocolError("unknown_kind", f"{head.kind} belongs on the data socket")
            model = self._route(head)
            msg = protocol.decode_body(head, body, model.contract, self.config.limits)
            protocol.check_values(msg.X, msg.Y, model.contract)
        except ProtocolError as err:
            self._reject(err, "control", model)
            return protocol.error_reply(err.code, err.reason)
        self._timed = model
        return model.predict(msg)

    def _cmd_status(self, model: ServedModel | None) -> dict[str, Any]:
        """The daemon's status: counts over the scope (the model named, or every model and
        the daemon's own), every model in brief, and the full status of the model named or of
        the only one."""
        scope = [model] if model is not None else list(self.models.values())
        own = [] if model is not None else [self.own_counters]
        counters = _total([*own, *(m.counters for m in scope)])
        rejected = _total([*([] if model is not None else [self.own_rejected]),
                           *(m.rejected for m in scope)])
        out: dict[str, Any] = {
            "ok": True, "code": "ok", "uptime_s": round(time.monotonic() - self._started, 3),
            "messages": counters["messages"], "counters": dict(counters),
            "rejected_messages": dict(rejected), "intake": self.intake.summary(),
            "serve": self.config.describe(), "endpoints": dict(self.bound),
            "models": {n: {**m.summary(), "routes": self.routes.of(n)}
                       for n, m in self.models.items()}}
        if model is None and len(self.models) == 1:
            model = next(iter(self.models.values()))
        if model is not None:
            out.update(model.status())
        return out

    def _cmd_metrics(self) -> dict[str, Any]:
        return {"ok": True, "code": "ok", **self.metrics()}

    def metrics(self) -> dict[str, Any]:
        """Everything measured: per model (``models``), the counts summed, and the intake;
        with one model, its figures at the top as well."""
        models = {n: m.metrics() for n, m in self.models.items()}
        out: dict[str, Any] = {"time": time.time(), "counters": dict(self.counters),
                               "rejected_messages": dict(self.rejected),
                               "intake": self.intake.summary(), "models": models,
                               "unrouted_rejected": dict(self.own_rejected)}
        if len(models) == 1:
            only = next(iter(models.values()))
            out.update({k: v for k, v in only.items()
                        if k not in ("counters", "rejected_messages")})
        return out

    def _snapshot(self) -> dict[str, Any]:
        """What the Prometheus endpoint reads (a new dict each time)."""
        return {"models": {n: m.metrics() for n, m in self.models.items()},
                "unrouted_rejected": dict(self.own_rejected), "intake": self.intake.summary()}

    def _publish_anomalies(self, metrics: zmq.Socket) -> None:
        """Every waiting anomaly event, one ``anomaly`` message each (frames: topic, map)."""
        for model in self.models.values():
            while model.anomalies:
                metrics.send_multipart([b"anomaly", protocol.pack(model.anomalies.popleft())])

    def _cmd_checkpoint_all(self) -> dict[str, Any]:
        if all(m.store is None for m in self.models.values()):
            return fail("no_checkpoint_dir", "the daemon was started without --checkpoint-dir")
        paths: dict[str, str | None] = {}
        problems: dict[str, str] = {}
        for name, model in self.models.items():
            path = self._checkpoint(model, "command") if model.store is not None else None
            paths[name] = str(path) if path is not None else None
            if path is None and model.store is not None:
                problems[name] = model.checkpoint_problem
        if problems:
            return {**fail("checkpoint_failed", "; ".join(f"{n}: {p}" for n, p in
                                                          problems.items())), "paths": paths}
        return {"ok": True, "code": "ok", "paths": paths}

    def _cmd_models(self, request: dict[str, Any]) -> dict[str, Any]:
        """Every model: its routes, contract, whether it was added live, and its figures."""
        return {"ok": True, "code": "ok", "models": {
            n: {"routes": self.routes.of(n), "inputs": m.contract.n_inputs,
                "outputs": m.contract.n_outputs,
                "task": "classification" if m.contract.classification else "regression",
                "added_live": n in self.added, **m.summary()} for n, m in self.models.items()}}

    def _cmd_add_model(self, request: dict[str, Any]) -> dict[str, Any]:
        """Serve a new model: ``model`` (its name) and ``table`` (the keys of a config file's
        ``[models.NAME]`` table). It resumes from its folder's checkpoints if there are any
        (a model removed and added again continues), and is recorded so a restart keeps it."""
        name, table = check_model_name(request.get("model")), request.get("table", {})
        if not isinstance(table, dict):
            raise ValueError("table must be a map of a model's settings (the keys of a "
                             "config file's [models.NAME] table)")
        json.dumps(table)  # it is recorded as JSON: refuse what cannot be, before anything
        if name in self.models:
            return fail("model_exists", f"a model named {name!r} is already served")
        if self.builder is None:
            return fail("no_builder", "this daemon was built without a way to build models "
                        "from a table (Daemon.serve(..., builder=...))")
        plan = self.builder(name, table, live=True)  # type: ignore[call-arg]
        probe = Routes()
        for n in self.models:
            probe.add(n, self.routes.of(n))
        probe.add(name, plan.routes)  # a clash raises ValueError: nothing was changed
        if plan.network is not None:
            net = plan.network
            wide = Intake(Contract(net.n_inputs, net.n_outputs, net.task == "classification"),
                          self.config.limits, self.config.rcvhwm)
            if wide.max_frame_bytes > self.intake.max_frame_bytes:
                return fail("too_wide", f"model {name!r} takes messages of up to "
                            f"{wide.max_frame_bytes} bytes per frame, over the "
                            f"{self.intake.max_frame_bytes} the data socket was bound for; "
                            "declare it in the config file and restart")
        for other in self.models.values():  # a stream keeps its model while it is tracked
            taken = [s for s in other.streams if probe.model_for(s) == name]
            if taken:
                return fail("stream_taken", f"stream {taken[0]!r} is tracked by model "
                            f"{other.name!r} and would move to {name!r}; choose other routes "
                            "or reset-stream it first")
        model = self._load(name, plan, strict=True)
        try:
            model.learner.warm()
            if model.outputs is not None:
                model.outputs.clean()
            persistent = self.config.checkpoint_dir is not None
            if persistent:
                write_registry(self.config.checkpoint_dir,  # type: ignore[arg-type]
                               {**self.added, name: table})
        except BaseException:
            self._drop(name)  # all or nothing
            raise
        self.added[name] = table
        if self.exporter is not None:
            self.exporter.add_model(name)
        self.log("model_added", model=name, routes=self.routes.of(name),
                 samples_seen=model.learner.state()["samples_seen"])
        return {"ok": True, "code": "ok", "model": name, "routes": self.routes.of(name),
                "samples_seen": model.learner.state()["samples_seen"],
                "persistent": persistent}

    def _cmd_remove_model(self, request: dict[str, Any]) -> dict[str, Any]:
        """Stop serving a model after a last checkpoint (its files stay: adding it again
        resumes it). A model of the config file comes back at the next start."""
        name = request.get("model")
        model = self.models.get(name) if isinstance(name, str) else None
        if model is None:
            return fail("unknown_model", f"no model {name!r}; this daemon serves "
                        f"{', '.join(self.models) or 'no models'}")
        path = self._checkpoint(model, "removed") if model.store is not None else None
        if path is None and model.store is not None:  # what it learned must be on disk first
            return fail("checkpoint_failed", f"model {model.name!r} is still served: its last "
                        f"checkpoint was not written ({model.checkpoint_problem})")
        if model.name in self.added and self.config.checkpoint_dir:
            write_registry(self.config.checkpoint_dir,
                           {k: v for k, v in self.added.items() if k != model.name})
        self.added.pop(model.name, None)
        model.close()
        self._drop(model.name)
        if self.exporter is not None:
            self.exporter.remove_model(model.name)
        self.log("model_removed", model=name, checkpoint=str(path) if path else None)
        return {"ok": True, "code": "ok", "model": name,
                "checkpoint": str(path) if path else None, "declared": name in self.declared}

    def _drop(self, name: str) -> None:
        self.routes.remove(name)
        del self.models[name]

    def _cmd_shutdown(self, request: dict[str, Any]) -> dict[str, Any]:
        self.stop()
        return {"ok": True, "code": "ok", "stopping": True}

    # --- output ----------------------------------------------------------------------------
    def log(self, event: str, **fields: Any) -> None:
        """One structured (JSON) line per event (from any thread)."""
        line = json.dumps({"ts": round(time.time(), 3), "event": event, **fields}, default=str)
        with self._log_lock:
            print(line, file=self._log_file, flush=True)

    _last_status = 0.0

    def _status_line(self, now: float) -> None:
        if not sys.stderr.isatty() or now - self._last_status < 1.0:
            return
        self._last_status = now
        parts = []
        for name, m in self.models.items():
            st = m.learner.state()
            parts.append(f"{name}: {st['samples_seen']:,} {m.metric} "
                         f"{st[f'running_{m.metric}']:.3f} {st['phase']}")
        sys.stderr.write("\r" + "  |  ".join(parts)
                         + f"  rejected {sum(self.rejected.values())} ")
        sys.stderr.flush()


def _learn_safely(item: tuple[ServedModel, list[protocol.Message]]) -> None:
    model, msgs = item
    try:
        model.learn_messages(msgs)
    except Exception as err:  # a bug must not kill the daemon: count it, log it, go on
        model.reject(ProtocolError("internal_error", repr(err)), "loop")


def _total(counters: Iterable[Counter[str]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for c in counters:
        out.update(c)
    return out


def _user_id(frame: Any) -> str | None:
    try:
        value = frame.get("User-Id")
    except (zmq.ZMQError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _endpoint(sock: zmq.Socket) -> str:
    value = sock.getsockopt(zmq.LAST_ENDPOINT)
    return value.decode() if isinstance(value, bytes) else str(value)

