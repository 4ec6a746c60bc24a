"""What a daemon serves: one ``ModelPlan`` per named model, from the serve flags, the config
file's ``[models.NAME]`` tables, or an ``add-model`` command.

A model table may hold::

    routes = ["sensor-*"]       # stream names or patterns that go to this model (default: NAME)
    model = "sensor.tsm"        # a saved model; or the built-in network's keys:
    inputs = 8                  # inputs, outputs, hidden, activation, task, mode, seed
    checkpoint_every = 50000    # per-model policy: checkpoint_every, checkpoint_interval, keep,
                                # checkpoint_budget, output_dir, label_capacity, label_max_age,
                                # max_streams, stream_ttl, max_seq_jump, strict_order
    reservoir = 5000            # refinement: reservoir and every --refine-* flag
    [models.NAME.settings]      # learner settings over the file's [settings]
    learning_rate = 0.02

Every key not given falls back to the serve flags (which fall back to the file's ``[serve]``
and ``[network]``); ``--set`` flags win over every model's settings. A named model keeps its
checkpoints in ``CHECKPOINT_DIR/models/NAME`` and writes exports to ``OUTPUT_DIR/NAME``
(default ``CHECKPOINT_DIR/models/NAME/exports``). Models added on a running daemon are
recorded in ``CHECKPOINT_DIR/models.json`` and come back at the next start.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tweenstream.files import write_atomic
from tweenstream.stream.routing import check_model_name, check_routes
from tweenstream.stream.security import Curve
from tweenstream.stream.settings import ServeConfig, cores

NETWORK_KEYS = ("inputs", "outputs", "hidden", "activation", "task", "mode", "seed")
POLICY_KEYS = ("checkpoint_every", "checkpoint_interval", "keep", "checkpoint_budget",
               "output_dir", "label_capacity", "label_max_age", "max_streams", "stream_ttl",
               "max_seq_jump", "strict_order", "anomaly_threshold")
REFINE_KEYS = ("reservoir", "reservoir_recency", "refine_every", "refine_plateau",
               "refine_min_gain", "refine_patience", "refine_drift", "refine_server",
               "refine_timeout", "refine_epochs", "refine_batch", "refine_lr",
               "refine_optimizer", "refine_threads", "after_refine")
MODEL_KEYS = ("routes", "model", "settings", *NETWORK_KEYS, *POLICY_KEYS, *REFINE_KEYS)
# what an add-model request may not set: a file or folder to read or write, an endpoint to
# send the reservoir to (files are named, never addressed, over the network; the config file
# may set them)
NOT_LIVE = ("model", "output_dir", "refine_server")
REGISTRY = "models.json"


@dataclass
class ModelPlan:
    """What to serve under one name: the learner to start from when the model's checkpoint
    folder holds none, this model's own ``ServeConfig`` (checkpoint folder and policy, output
    folder, stream limits, refinement), its routes, the learner settings to apply (also to a
    resumed learner), and the table it was declared with (recorded for models added live)."""

    learner: Callable[[], Any]
    config: ServeConfig
    routes: tuple[str, ...] = ("*",)
    settings: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] | None = None
    network: Any = None  # the built-in Network (None for a model file)


def serve_config(args: argparse.Namespace) -> ServeConfig:
    """The ``ServeConfig`` the serve flags ask for; ``ValueError`` names a bad one."""
    from tweenstream.stream.refine_commands import refinement_from_args

    curve = Curve.from_files(args.curve_secret, args.allow_keys, args.admin_keys,
                             args.allow_any_key) if args.curve_secret else None
    if (args.allow_keys or args.admin_keys or args.allow_any_key) and not args.curve_secret:
        raise ValueError("--allow-keys, --admin-keys and --allow-any-key need --curve-secret")
    return ServeConfig(
        data=args.data, control=args.control, insecure_control=args.insecure_control,
        metrics=args.metrics, prometheus=args.prometheus, subscribe=args.sub,
        checkpoint_dir=str(args.checkpoint_dir) if args.checkpoint_dir else None,
        checkpoint_every=args.checkpoint_every, checkpoint_interval=args.checkpoint_interval,
        keep_checkpoints=args.keep, checkpoint_budget=args.checkpoint_budget,
        output_dir=str(args.output_dir) if args.output_dir else None,
        push_targets=push_targets(args.push_target), push_timeout=args.push_timeout,
        rcvhwm=args.rcvhwm, queue_bytes=args.queue_bytes, max_streams=args.max_streams,
        stream_ttl=args.stream_ttl, max_seq_jump=args.max_seq_jump,
        strict_order=args.strict_order, metrics_interval=args.metrics_interval,
        label_capacity=args.label_capacity, label_max_age=args.label_max_age,
        learner_threads=args.learner_threads or cores(), curve=curve,
        anomaly_threshold=args.anomaly_threshold,
        refinement=refinement_from_args(args))


def push_targets(pairs: list[str]) -> dict[str, str]:
    """``NAME=ENDPOINT`` flags as a dict; raises ``ValueError`` on a malformed one.

    Examples
    --------
    >>> push_targets(["edge1=tcp://10.0.0.5:5557"])
    {'edge1': 'tcp://10.0.0.5:5557'}
    """
    out = {}
    for pair in pairs:
        name, sep, endpoint = pair.partition("=")
        if not sep or not name or "://" not in endpoint:
            raise ValueError(f"--push-target expects NAME=ENDPOINT like "
                             f"edge1=tcp://10.0.0.5:5557, found {pair!r}")
        out[name] = endpoint
    return out


def _factory(args: argparse.Namespace, settings: dict[str, Any]
             ) -> tuple[Callable[[], Any], Any]:
    """The learner to use when there is no checkpoint (the --model file or a built-in net),
    and the built-in ``Network`` (None for a model file)."""
    from tweenstream.models import Dense, Network
    from tweenstream.models.activations import canonical_activation
    from tweenstream.runtime.learner import Learner
    from tweenstream.runtime.persist import load

    if args.model is not None:
        model = load(args.model)
        return (lambda: model), None
    act = canonical_activation(args.activation, "--activation")
    net = Network(args.inputs, [*(Dense(h, act) for h in args.hidden), Dense(args.outputs)],
                  task=args.task)
    given = {"reservoir_size": args.reservoir or 0,
             "reservoir_recency": args.reservoir_recency, **settings}
    return (lambda: Learner(net, mode=args.mode, seed=args.seed, **given)), net


def default_plan(args: argparse.Namespace, settings: dict[str, Any]) -> ModelPlan:
    """The one model of a daemon whose config file declares no models: every stream goes to
    it, and its checkpoints are in the checkpoint folder itself."""
    factory, net = _factory(args, settings)
    return ModelPlan(factory, serve_config(args), ("*",), settings, network=net)


def plan_from_table(name: str, table: dict[str, Any], args: argparse.Namespace,
                    settings: dict[str, Any], flag_settings: dict[str, Any] | None = None,
                    parser: argparse.ArgumentParser | None = None, live: bool = False
                    ) -> ModelPlan:
    """The plan of model ``name`` declared by ``table`` (a ``[models.NAME]`` table or, with
    ``live``, an ``add-model`` request) over the serve flags ``args``. ``settings`` are the
    file's ``[settings]``; ``flag_settings`` (``--set``) win over the table's own. Values go
    through the serve flags' own types and choices. A live table may not name files, folders
    or endpoints (``NOT_LIVE``), and its model must fit its checkpoint budget before anything
    is allocated. ``ValueError`` names what is wrong.

    Examples
    --------
    >>> from tweenstream.cli import serve_defaults
    >>> plan = plan_from_table("s", {"routes": ["sensor-*"], "inputs": 3, "outputs": 2,
    ...                              "settings": {"learning_rate": 0.02}}, serve_defaults(), {})
    >>> plan.routes, plan.settings, plan.learner().network.n_inputs
    (('sensor-*',), {'learning_rate': 0.02}, 3)
    """
    from tweenstream.runtime.config import TweenConfig

    check_model_name(name)
    if not isinstance(table, dict):
        raise ValueError(f"model {name!r}: expected a table of settings, found {table!r}")
    unknown = sorted(set(table) - set(MODEL_KEYS))
    if unknown:
        raise ValueError(f"model {name!r}: unknown key(s) {unknown}; a model takes "
                         f"{', '.join(MODEL_KEYS)}")
    if live:
        refused = sorted(set(table) & set(NOT_LIVE))
        if refused:
            raise ValueError(f"model {name!r}: {refused} cannot be set by add-model (files "
                             "and endpoints are not addressed over the network); declare the "
                             "model in the config file")
    routes = tuple(check_routes(table.get("routes", [name])))
    own = table.get("settings", {})
    if not isinstance(own, dict):
        raise ValueError(f"model {name!r}: settings must be a table of TweenConfig fields")
    merged = {**settings, **own, **(flag_settings or {})}
    try:
        TweenConfig(**merged)
    except (TypeError, ValueError) as err:
        raise ValueError(f"model {name!r}: settings: {err}") from None
    ns = argparse.Namespace(**vars(args))
    ns.model = None
    actions = {a.dest: a for a in parser._actions} if parser is not None else {}
    for key, value in table.items():
        if key in ("routes", "settings"):
            continue
        action = actions.get(key)
        if action is not None:
            value = _flag_value(name, key, value, action)
        setattr(ns, key, value)
    if isinstance(ns.hidden, list):
        ns.hidden = tuple(ns.hidden)
    if ns.model is not None:
        ns.model = Path(ns.model)
    root = Path(args.checkpoint_dir) if args.checkpoint_dir else None
    ns.checkpoint_dir = root / "models" / name if root is not None else None
    if "output_dir" not in table:
        ns.output_dir = Path(args.output_dir) / name if args.output_dir else None
    try:
        config = serve_config(ns)
        factory, net = _factory(ns, merged)
    except (TypeError, ValueError) as err:
        raise ValueError(f"model {name!r}: {err}") from None
    if live and net is not None:
        _check_size(name, net, config, ns.reservoir or 0)
    return ModelPlan(factory, config, routes, merged, dict(table), net)


def _flag_value(name: str, key: str, value: Any, action: argparse.Action) -> Any:
    """A table's value checked as the serve flag ``key`` checks its own: booleans for
    switches, the flag's type (applied to the value's text) and its choices."""
    if action.nargs == 0:  # a switch (store_true)
        if type(value) is not bool:
            raise ValueError(f"model {name!r}: {key} must be true or false, found {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float, list)):
        raise ValueError(f"model {name!r}: {key}: unexpected value {value!r}")
    if callable(action.type):
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        try:
            value = action.type(text)
        except (argparse.ArgumentTypeError, ValueError, TypeError) as err:
            raise ValueError(f"model {name!r}: {key}: {err}") from None
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"model {name!r}: {key} must be one of "
                         f"{', '.join(map(str, action.choices))}, found {value!r}")
    return value


def _check_size(name: str, net: Any, config: ServeConfig, reservoir: int) -> None:
    """Refuse a live model whose buffers (learner arena, waiting labels, reservoir) would
    exceed its checkpoint budget, before any of them is allocated."""
    row = 4 * (net.n_inputs + net.n_outputs)
    worst = net.arena_bytes() + config.label_capacity * 2 * 4 * net.n_inputs + reservoir * row
    if worst > config.checkpoint_budget:
        raise ValueError(f"model {name!r}: its buffers would take {worst} bytes, over its "
                         f"checkpoint_budget of {config.checkpoint_budget}")


def read_registry(checkpoint_dir: str | Path | None) -> dict[str, dict[str, Any]]:
    """The models added on a running daemon (name -> table), from ``models.json``."""
    if checkpoint_dir is None:
        return {}
    path = Path(checkpoint_dir) / REGISTRY
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable list of added models ({err}); fix or remove "
                         "it") from None
    added = data.get("added") if isinstance(data, dict) else None
    if not isinstance(added, dict):
        raise ValueError(f"{path}: expected {{\"added\": {{NAME: TABLE}}}}")
    return added


def write_registry(checkpoint_dir: str | Path, added: dict[str, dict[str, Any]]) -> None:
    """Record the models added live (atomically: a crash leaves the old list or the new)."""
    write_atomic(Path(checkpoint_dir) / REGISTRY,  # in the order added: patterns go by order
                 json.dumps({"added": added}, indent=1).encode())


def own_config(config: ServeConfig, name: str) -> ServeConfig:
    """A model's config inside a daemon serving several models: its checkpoints and exports
    in folders of its own, and no refinement (a ``Refinement`` serves one model: give each
    model its own with ``dataclasses.replace``).

    Examples
    --------
    >>> own_config(ServeConfig(checkpoint_dir="ck"), "a").checkpoint_dir
    'ck/models/a'
    """
    ck = str(Path(config.checkpoint_dir) / "models" / name) if config.checkpoint_dir else None
    out = str(Path(config.output_dir) / name) if config.output_dir else None
    return replace(config, checkpoint_dir=ck, output_dir=out, refinement=None)
