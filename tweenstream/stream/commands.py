"""The stream subcommands of ``tweenstream``: serve, send, status, keys.

Each ``add_*`` function declares a subcommand's flags; each ``run_*`` function carries it out
and returns the exit code. Bad flags and unreadable files end with exit code 2 and one line
that says what to fix; nothing is half-started.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tweenstream.modes import MODES
from tweenstream.stream.client import Control, Producer
from tweenstream.stream.flags import positive as _positive
from tweenstream.stream.refine_commands import add_refine_flags

# The compiled engine is imported inside the commands that learn, so that ``tweenstream edge``
# and ``tweenstream status`` run where numba is not installed.


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 32,32, found {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be >= 1, found {text!r}")
    return sizes


def add_serve(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the learning daemon")
    p.add_argument("--model", type=Path, help="a model saved with Learner.save")
    p.add_argument("--inputs", type=_positive(int), default=8,
                   help="built-in network: inputs per sample (default 8)")
    p.add_argument("--outputs", type=_positive(int), default=4,
                   help="built-in network: classes, or outputs for regression (default 4)")
    p.add_argument("--hidden", type=_hidden, default=(32, 32), help="hidden sizes (32,32)")
    p.add_argument("--activation", default="relu",
                   help="built-in network: hidden activation (default relu, the best of the "
                        "real-stream sweep in every mode)")
    p.add_argument("--task", choices=("classification", "regression"), default="classification")
    p.add_argument("--mode", choices=MODES,
                   default="hybrid")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="tcp://127.0.0.1:5555", help="data endpoint (bound)")
    p.add_argument("--sub", action="store_true",
                   help="data socket is SUB, connected to a publisher at --data")
    p.add_argument("--control", help="control endpoint (default: an ipc socket only this user "
                   "can reach; a tcp endpoint needs --curve-secret or --insecure-control)")
    p.add_argument("--insecure-control", action="store_true",
                   help="allow a tcp control endpoint without CURVE (any process that reaches "
                        "it can stop the daemon)")
    p.add_argument("--metrics", help="metrics PUB endpoint (off by default)")
    p.add_argument("--metrics-interval", type=_positive(float), default=1.0)
    p.add_argument("--prometheus", metavar="HOST:PORT",
                   help="serve Prometheus metrics over HTTP at HOST:PORT (off by default; "
                        "needs the [prometheus] extra)")
    p.add_argument("--checkpoint-dir", type=Path)
    p.add_argument("--checkpoint-every", type=_positive(int), default=100_000,
                   help="samples between checkpoints")
    p.add_argument("--checkpoint-interval", type=_positive(float), default=60.0,
                   help="seconds between checkpoints")
    p.add_argument("--keep", type=_positive(int), default=3, help="checkpoints kept")
    p.add_argument("--checkpoint-budget", type=_positive(int), default=1 << 30,
                   help="bytes of arrays one checkpoint may hold (default 1 GiB)")
    p.add_argument("--output-dir", type=Path,
                   help="where the save and export commands write (default CHECKPOINT_DIR/"
                        "exports)")
    p.add_argument("--push-target", action="append", default=[], metavar="NAME=ENDPOINT",
                   help="an edge predictor that 'export' may push to, by NAME (repeatable)")
    p.add_argument("--push-timeout", type=_positive(float), default=10.0,
                   help="seconds a push may take (default 10)")
    p.add_argument("--rcvhwm", type=_positive(int), default=1000,
                   help="messages queued per producer connection before it blocks")
    p.add_argument("--queue-bytes", type=_positive(int),
                   help="lower --rcvhwm so one producer connection queues at most this many "
                        "bytes (default: rcvhwm x the largest message the model accepts)")
    p.add_argument("--max-streams", type=_positive(int), default=1024)
    p.add_argument("--stream-ttl", type=_positive(float), default=3600.0,
                   help="seconds of serving without a message before a stream is freed")
    p.add_argument("--max-seq-jump", type=_positive(int), default=1_000_000,
                   help="how far past a stream's last seq a message may jump (default 1e6)")
    p.add_argument("--strict-order", action="store_true",
                   help="apply only the next seq of each stream (producers resend the rest): "
                        "learning in exactly the sent order")
    p.add_argument("--label-capacity", type=_positive(int), default=10_000)
    p.add_argument("--label-max-age", type=_positive(float), default=600.0)
    p.add_argument("--curve-secret", type=Path, help="server certificate (secret) file")
    p.add_argument("--allow-keys", type=Path,
                   help="folder of producer and reader public certificates")
    p.add_argument("--admin-keys", type=Path,
                   help="folder of operator public certificates (admin commands)")
    p.add_argument("--allow-any-key", action="store_true",
                   help="with --curve-secret: admit every client key as producer and reader")
    p.add_argument("--anomaly-threshold", type=float,
                   help="an autoencoder (--set reconstruct=true): publish an anomaly event on "
                        "the metrics socket for every learned sample scoring at least this, in "
                        "(0, 1], e.g. 0.999")
    p.add_argument("--learner-threads", type=_positive(int),
                   help="threads that learn different models at once (default: one per core "
                        "this process may use)")
    p.add_argument("--log", type=Path, help="write the JSON event log here (default stderr)")
    p.add_argument("--config", type=Path,
                   help="a TOML file of [serve], [network], [settings] and [models.NAME] "
                        "tables (flags win over it; see tweenstream config --print-defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a learner setting (any TweenConfig field), e.g. learning_rate=0.01; "
                        "repeatable, wins over the config file")
    add_refine_flags(p)


def add_config(sub: Any) -> None:
    p = sub.add_parser("config", help="write the default serve config file")
    p.add_argument("--print-defaults", action="store_true", required=True,
                   help="print a commented TOML file of every serve flag and learner setting "
                        "at its default")


def run_config(args: argparse.Namespace, serve_parser: argparse.ArgumentParser) -> int:
    """Print the commented default config file."""
    from tweenstream.stream.serve_file import defaults_text

    sys.stdout.write(defaults_text(serve_parser))
    return 0


def with_config_file(parser: argparse.ArgumentParser, serve_parser: argparse.ArgumentParser,
                     argv: Any, args: argparse.Namespace) -> argparse.Namespace:
    """``args`` of ``serve`` parsed again over its ``--config`` file: the file's [serve] and
    [network] values become the flags' defaults (so flags win), and its [settings] and
    [models.NAME] tables are kept as ``args.file_settings`` and ``args.file_models``.
    ``ConfigFileError`` names a bad file or key."""
    from tweenstream.stream.serve_file import flag_defaults, read_config

    if args.config is None:
        args.file_settings, args.file_models = {}, {}
        return args
    tables = read_config(args.config, flag_defaults(serve_parser))
    serve_parser.set_defaults(**tables["serve"], **tables["network"])
    again = parser.parse_args(argv)
    again.file_settings, again.file_models = tables["settings"], tables["models"]
    return again


def run_serve(args: argparse.Namespace, serve_parser: argparse.ArgumentParser | None = None
              ) -> int:
    """Build (or resume) the models and serve them until shutdown or a signal: the config
    file's ``[models.NAME]``, or one model of the flags that every stream goes to."""
    from functools import partial

    from tweenstream.runtime.persist import ModelFileError
    from tweenstream.stream.daemon import Daemon
    from tweenstream.stream.model_plans import default_plan, plan_from_table, serve_config
    from tweenstream.stream.serve_file import merged_settings, parse_set

    log = open(args.log, "a", buffering=1) if args.log else None
    try:
        try:
            file_settings = getattr(args, "file_settings", {})
            flag_settings = parse_set(args.set)
            settings = merged_settings(file_settings, flag_settings)
            builder = partial(plan_from_table, args=args, settings=file_settings,
                              flag_settings=flag_settings, parser=serve_parser)
            tables = getattr(args, "file_models", {})
            plans = {name: builder(name, table) for name, table in tables.items()} if tables \
                else {"default": default_plan(args, settings)}
            config = serve_config(args)
            daemon = Daemon.serve(plans, config, log=log, builder=builder)
            for name, model in daemon.models.items():
                daemon.log("settings", model=name, settings=asdict(model.learner.config),
                           given=sorted(plans[name].settings if name in plans else {}),
                           config_file=str(args.config or ""))
        except (ValueError, TypeError, ModelFileError, OSError) as err:
            print(f"tweenstream serve: {err}", file=sys.stderr)
            return 2
        return daemon.run()
    finally:
        if log is not None:
            log.close()


def add_send(sub: Any) -> None:
    p = sub.add_parser("send", help="replay a .npz or .csv file into a daemon")
    p.add_argument("file", type=Path)
    p.add_argument("--data", default="tcp://127.0.0.1:5555")
    p.add_argument("--rate", type=_positive(float), help="samples per second (default: max)")
    p.add_argument("--batch", type=_positive(int), default=256, help="samples per message")
    p.add_argument("--stream", default="default")
    p.add_argument("--start-seq", type=int, default=0)
    p.add_argument("--regression", action="store_true", help="targets are floats")
    p.add_argument("--curve-secret", type=Path, help="this client's secret certificate")
    p.add_argument("--server-key", type=Path, help="the daemon's public certificate")
    p.add_argument("--control", help="the daemon's control endpoint: keep what was sent until "
                   "the daemon checkpointed it, resend what it lacks, and wait until it has "
                   "applied everything")


def read_samples(path: Path, regression: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """X and y from a ``.npz`` (arrays ``X`` and ``y``) or a ``.csv`` (last column is y).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = p.write_text("a,b,label\\n0.5,1.0,1\\n0.25,2.0,0\\n")
    >>> X, y = read_samples(p)
    >>> X.shape, y.tolist()
    ((2, 2), [1, 0])
    """
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "X" not in data or "y" not in data:
                raise ValueError(f"{path}: needs arrays named X and y, found {list(data)}")
            X, y = data["X"], data["y"]
    elif path.suffix == ".csv":
        first = path.open().readline()
        skip = 1 if any(c.isalpha() for c in first) else 0
        table = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
        X, y = table[:, :-1], table[:, -1]
    else:
        raise ValueError(f"{path}: use a .npz (arrays X, y) or a .csv (last column y)")
    if len(X) != len(y) or X.ndim != 2:
        raise ValueError(f"{path}: X must be 2-D with one y per row")
    bad = ~np.isfinite(np.asarray(X, dtype=np.float64)).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: row {int(np.argmax(bad))} of X has NaN or inf; nothing was "
                         "sent. Fix or drop that row")
    if regression:
        return X.astype(np.float32), y.astype(np.float32).reshape(len(y), -1)
    if not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError(f"{path}: labels must be integers (or pass --regression)")
    return X.astype(np.float32), y.astype(np.int64)


def run_send(args: argparse.Namespace) -> int:
    """Send a file's samples in order, paced to --rate, and report what was sent."""
    try:
        X, y = read_samples(args.file, args.regression)
    except (ValueError, OSError) as err:
        print(f"tweenstream send: {err}", file=sys.stderr)
        return 2
    start = time.monotonic()
    with Producer(args.data, stream=args.stream, start_seq=args.start_seq,
                  curve_secret=args.curve_secret, server_public=args.server_key,
                  control=args.control) as producer:
        for i in range(0, len(y), args.batch):
            producer.learn(X[i:i + args.batch], y[i:i + args.batch])
            if args.rate:
                ahead = (i + args.batch) / args.rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)  # pacing a replay, not synchronisation
        complete = producer.flush() if args.control else producer.dropped == 0
        report = {"samples": len(y), "messages": producer.sent, "blocked": producer.blocked,
                  "dropped": producer.dropped, "resent": producer.resent,
                  "next_seq": producer.seq, "complete": complete,
                  "seconds": round(time.monotonic() - start, 3)}
    print(json.dumps(report))
    return 0 if complete else 1


def add_status(sub: Any) -> None:
    p = sub.add_parser("status", help="ask a running daemon for its status")
    p.add_argument("--control", help="control endpoint (default: this user's ipc socket)")
    p.add_argument("--model", help="one model of a daemon that serves several, in full "
                   "(default: the daemon, with every model in brief)")
    p.add_argument("--timeout", type=_positive(float), default=2.0)
    p.add_argument("--retries", type=_positive(int), default=2)
    p.add_argument("--curve-secret", type=Path, help="this client's secret certificate")
    p.add_argument("--server-key", type=Path, help="the daemon's public certificate")


def run_status(args: argparse.Namespace) -> int:
    """Print the daemon's status as JSON; exit 1 if it does not answer."""
    from tweenstream.stream.security import default_control

    with Control(args.control or default_control(), timeout=args.timeout, retries=args.retries,
                 curve_secret=args.curve_secret, server_public=args.server_key) as control:
        try:
            print(json.dumps(control.status(model=args.model), indent=1))
        except TimeoutError as err:
            print(f"tweenstream status: {err}", file=sys.stderr)
            return 1
    return 0


def add_keys(sub: Any) -> None:
    p = sub.add_parser("keys", help="create a CURVE certificate pair")
    p.add_argument("folder", type=Path)
    p.add_argument("name")


def run_keys(args: argparse.Namespace) -> int:
    """Write NAME.key (public) and NAME.key_secret (mode 0600) into FOLDER."""
    import os

    import zmq.auth

    args.folder.mkdir(parents=True, exist_ok=True)
    old = os.umask(0o077)  # the secret key is never readable by others, not even briefly
    try:
        public, secret = zmq.auth.create_certificates(args.folder, args.name)
    finally:
        os.umask(old)
    os.chmod(public, 0o644)
    print(json.dumps({"public": public, "secret": secret}))
    return 0
