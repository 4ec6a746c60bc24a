"""``tweenstream tune``: choose a stream's settings by replaying it under many configurations.

A recorded stream (the ``.npz`` or ``.csv`` that ``tweenstream send`` reads) is replayed
prequentially (test-then-train, in order, once) by one learner per configuration. Ray Tune
runs the configurations in parallel and stops the weak ones early with ASHA, on the
prequential metric reported after every tenth of the stream (``chunks``). The result is a
ranked table and the best configuration as a config file that ``serve --config`` reads
(``[network]`` with its mode, and ``[settings]``), beside the library defaults' score on the
same replay.

A search space is a TOML file of one ``[space]`` table; each key is a learner setting (any
``TweenConfig`` field, ``mode`` included) and each value one of::

    learning_rate = {loguniform = [0.001, 0.3]}
    momentum = {uniform = [0.0, 0.95]}
    optimizer = {choice = ["sgd", "adam"]}
    batch_size = {randint = [1, 8]}        # low inclusive, high exclusive
    tween_rate = 0.1                       # a fixed value

``default_space`` is used without one.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

DISTRIBUTIONS = ("loguniform", "uniform", "choice", "randint")
METRIC = "score"  # prequential accuracy, or minus the prequential MAE (higher is better)


def default_space(task: str) -> dict[str, Any]:
    """The search space used without ``--space``: the mode, the optimiser and its rate, the
    tween rate; ranges spanning the values the evaluation suites found good per body.

    Examples
    --------
    >>> sorted(default_space("classification"))
    ['learning_rate', 'mode', 'momentum', 'optimizer', 'tween_rate']
    """
    return {"mode": {"choice": ["tween", "backprop", "hybrid"]},
            "optimizer": {"choice": ["sgd", "adam"]},
            "learning_rate": {"loguniform": [1e-3, 0.3]},
            "momentum": {"uniform": [0.0, 0.95]},
            "tween_rate": {"loguniform": [0.01, 1.0]}}


def read_space(path: str | Path) -> dict[str, Any]:
    """The ``[space]`` table of a TOML file, checked; ``ValueError`` names a bad entry.

    Examples
    --------
    >>> p = Path(tempfile.mkdtemp()) / "space.toml"
    >>> _ = p.write_text('[space]\\nlearning_rate = {loguniform = [0.001, 0.1]}\\n')
    >>> read_space(p)
    {'learning_rate': {'loguniform': [0.001, 0.1]}}
    """
    from tweenstream.stream.serve_file import read_toml

    data = read_toml(path, "the search space")
    space = data.get("space")
    if not isinstance(space, dict) or set(data) != {"space"}:
        raise ValueError(f"{path}: a search space is one [space] table")
    check_space(space, str(path))
    return space


def check_space(space: dict[str, Any], where: str = "space") -> None:
    """Every key a ``TweenConfig`` field, every value a fixed value or one distribution."""
    from tweenstream.runtime.config import TweenConfig

    known = {f.name for f in fields(TweenConfig)}
    for key, value in space.items():
        if key not in known:
            raise ValueError(f"{where}: {key!r} is not a learner setting")
        if isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
                raise ValueError(f"{where}: {key} must be a value or one of "
                                 f"{{{' | '.join(DISTRIBUTIONS)} = ...}}, found {value!r}")
            kind, args = next(iter(value.items()))
            if not isinstance(args, list) or not args or (
                    kind != "choice" and (len(args) != 2 or not args[0] < args[1])):
                raise ValueError(f"{where}: {key}: {kind} needs "
                                 f"{'a list of values' if kind == 'choice' else '[low, high]'}"
                                 f", found {args!r}")
            if kind == "loguniform" and not args[0] > 0:
                raise ValueError(f"{where}: {key}: loguniform needs low > 0")


def _ray_space(space: dict[str, Any]) -> dict[str, Any]:
    from ray import tune

    out = {}
    for key, value in space.items():
        if isinstance(value, dict):
            kind, args = next(iter(value.items()))
            out[key] = tune.choice(args) if kind == "choice" else getattr(tune, kind)(*args)
        else:
            out[key] = value
    return out


def replay(network: Any, settings: dict[str, Any], X: np.ndarray, y: np.ndarray, *,
           chunks: int = 10, seed: int = 0, report: Any = None) -> float:
    """Replay (X, y) prequentially with one learner; ``report(chunk, score)`` after each of
    ``chunks`` equal parts. Returns the final score (accuracy, or minus the MAE).

    Examples
    --------
    >>> from tweenstream import Dense, Network
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 2)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> 0.5 < replay(Network(2, [Dense(8, "relu"), Dense(2)]), {"mode": "backprop"}, X, y)
    True
    """
    from tweenstream.runtime.learner import Learner

    learner = Learner(network, seed=seed, **settings)
    key = "prequential_accuracy" if network.task == "classification" else "prequential_mae"
    bounds = np.linspace(0, len(X), chunks + 1).astype(int)
    score = float("nan")
    for i in range(chunks):
        lo, hi = bounds[i], bounds[i + 1]
        if hi > lo:
            learner.learn_many(X[lo:hi], y[lo:hi])
        value = float(learner.state()[key])
        score = value if key == "prequential_accuracy" else -value
        if not math.isfinite(score):
            score = -1e30 if key != "prequential_accuracy" else 0.0
        if report is not None:
            report(i + 1, score)
    return score


def _trial(config: dict[str, Any], network: dict[str, Any], X: np.ndarray, y: np.ndarray,
           chunks: int, seed: int) -> None:
    """One Ray Tune trial: the replay, reporting the score after every chunk."""
    from ray import tune

    from tweenstream.models.network import Network

    def report(chunk: int, score: float) -> None:
        tune.report({METRIC: score, "chunk": chunk})

    replay(Network.from_dict(network), config, X, y, chunks=chunks, seed=seed, report=report)


def tune_stream(network: Any, X: np.ndarray, y: np.ndarray, space: dict[str, Any], *,
                samples: int = 16, workers: int = 2, chunks: int = 10, seed: int = 0,
                grace: int = 2, address: str | None = None) -> dict[str, Any]:
    """Tune ``network``'s settings on the recorded stream (X, y) with Ray Tune and ASHA.

    Returns ``{"ranked": [{"score", "chunks", "config"}, best first], "defaults": score of
    the library defaults, "seconds": wall time}``.
    """
    import os

    from tweenstream.stream.ray_refine import connect

    check_space(space)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no files beyond ours
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started = time.perf_counter()
    ray = connect(address, num_cpus=None)
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    trainable = tune.with_resources(
        tune.with_parameters(_trial, network=network.to_dict(), X=X, y=y, chunks=chunks,
                             seed=seed), {"cpu": 1})
    scheduler = ASHAScheduler(max_t=chunks, grace_period=min(grace, chunks),
                              time_attr="chunk", reduction_factor=2)
    with tempfile.TemporaryDirectory(prefix="tweenstream-tune-") as storage:
        tuner = tune.Tuner(
            trainable, param_space=_ray_space(space),
            tune_config=tune.TuneConfig(metric=METRIC, mode="max", num_samples=samples,
                                        scheduler=scheduler, max_concurrent_trials=workers,
                                        reuse_actors=True,
                                        search_alg=_searcher(seed, workers)),
            run_config=tune.RunConfig(storage_path=storage, name="tune", verbose=0))
        grid = tuner.fit()
        ranked: list[dict[str, Any]] = []
        for i in range(len(grid)):
            result = grid[i]
            if result.metrics is None or METRIC not in result.metrics:
                continue
            ranked.append({"score": float(result.metrics[METRIC]),
                           "chunks": int(result.metrics.get("chunk", 0)),
                           "config": {k: _plain(v) for k, v in (result.config or {}).items()}})
    del ray
    ranked.sort(key=lambda r: (-int(r["chunks"]), -float(r["score"])))  # finished, then score
    defaults = replay(network, {}, X, y, chunks=chunks, seed=seed)
    return {"ranked": ranked, "defaults": defaults,
            "seconds": round(time.perf_counter() - started, 2)}


def _searcher(seed: int, workers: int) -> Any:
    """Random search with a fixed seed (the same configurations for the same seed)."""
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(random_state=seed, max_concurrent=workers)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def best_config_text(network: Any, config: dict[str, Any], score: float,
                     defaults: float) -> str:
    """The best configuration as a config file ``serve --config`` reads.

    Examples
    --------
    >>> from tweenstream import Dense, Network
    >>> text = best_config_text(Network(3, [Dense(8, "relu"), Dense(2)]),
    ...                         {"mode": "backprop", "learning_rate": 0.02}, 0.91, 0.85)
    >>> "[network]" in text and 'mode = "backprop"' in text and "learning_rate = 0.02" in text
    True
    """
    from tweenstream.stream.serve_file import _toml

    layers = network.to_dict()["layers"]
    hidden = [layer["units"] for layer in layers[:-1]]
    activation = layers[0]["activation"] if len(layers) > 1 else "relu"
    net = {"inputs": network.n_inputs, "outputs": network.n_outputs, "hidden": hidden,
           "activation": activation, "task": network.task,
           "mode": config.get("mode", "tween")}
    lines = ["# tweenstream tune: the best configuration of the replay",
             f"# prequential score {score:.4f}; the library defaults scored {defaults:.4f}",
             "", "[network]"]
    lines += [f"{k} = {_toml(v)}" for k, v in net.items()]
    lines += ["", "[settings]"]
    lines += [f"{k} = {_toml(v)}" for k, v in sorted(config.items()) if k != "mode"]
    return "\n".join(lines) + "\n"


def ranked_table(result: dict[str, Any], top: int = 20) -> str:
    """The ranked configurations as a markdown table (the library defaults' score first)."""
    keys = sorted({k for r in result["ranked"] for k in r["config"]})
    lines = [f"library defaults: {result['defaults']:.4f}; {len(result['ranked'])} "
             f"configurations in {result['seconds']} s", "",
             "| rank | score | chunks | " + " | ".join(keys) + " |",
             "|---|---|---|" + "---|" * len(keys)]
    for i, r in enumerate(result["ranked"][:top], 1):
        cells = [_cell(r["config"].get(k)) for k in keys]
        lines.append(f"| {i} | {r['score']:.4f} | {r['chunks']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def add_tune(sub: Any) -> None:
    from tweenstream.stream.flags import positive

    p = sub.add_parser("tune", help="choose settings by replaying a recorded stream (Ray Tune)")
    p.add_argument("file", type=Path, help="a recorded stream: .npz (X, y) or .csv")
    p.add_argument("--space", type=Path, help="a TOML [space] table (default: the mode, "
                   "optimiser, learning rate, momentum and tween rate)")
    p.add_argument("--config", type=Path, help="a serve config file whose [network] is tuned "
                   "(default: hidden 32,32 relu, inputs and outputs from the stream)")
    p.add_argument("--regression", action="store_true", help="targets are floats")
    p.add_argument("--samples", type=positive(int), default=16, help="configurations tried")
    p.add_argument("--workers", type=positive(int), default=2, help="trials at once")
    p.add_argument("--chunks", type=positive(int), default=10,
                   help="parts of the stream between two reports (ASHA's time unit)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ray", metavar="ADDRESS", help="the Ray cluster's head (HOST:PORT); "
                   "default: a local instance on loopback")
    p.add_argument("--out", type=Path, default=Path("tuned.toml"),
                   help="where the best configuration is written (default tuned.toml)")


def run_tune(args: Any) -> int:
    """Tune, print the ranked table, write the best configuration."""
    from tweenstream.stream.commands import read_samples

    try:
        X, y = read_samples(args.file, args.regression)
        space = read_space(args.space) if args.space else default_space(
            "regression" if args.regression else "classification")
        network = _network(args, X, y)
    except (ValueError, OSError) as err:
        print(f"tweenstream tune: {err}", file=sys.stderr)
        return 2
    try:
        result = tune_stream(network, X, y, space, samples=args.samples, workers=args.workers,
                             chunks=args.chunks, seed=args.seed, address=args.ray)
    except ConnectionError as err:
        print(f"tweenstream tune: {err}", file=sys.stderr)
        return 1
    if not result["ranked"]:
        print("tweenstream tune: no trial reported a score", file=sys.stderr)
        return 1
    best = result["ranked"][0]
    args.out.write_text(best_config_text(network, best["config"], best["score"],
                                         result["defaults"]))
    sys.stdout.write(ranked_table(result))
    print(f"\nbest: {best['score']:.4f} (defaults {result['defaults']:.4f}); written to "
          f"{args.out}")
    return 0


def _network(args: Any, X: np.ndarray, y: np.ndarray) -> Any:
    """The network to tune: the config file's [network], else the built-in default."""
    from tweenstream.models import Dense, Network
    from tweenstream.models.activations import canonical_activation

    table: dict[str, Any] = {}
    if args.config is not None:
        from tweenstream.cli import serve_parser
        from tweenstream.stream.serve_file import flag_defaults, read_config

        table = read_config(args.config, flag_defaults(serve_parser()))["network"]
    outputs = y.shape[1] if args.regression else int(y.max()) + 1
    if table.get("inputs", X.shape[1]) != X.shape[1]:
        raise ValueError(f"the stream has {X.shape[1]} inputs, the config's network "
                         f"{table['inputs']}")
    hidden = table.get("hidden", (32, 32))
    act = canonical_activation(table.get("activation", "relu"), "activation")
    return Network(X.shape[1], [*(Dense(h, act) for h in hidden),
                                Dense(int(table.get("outputs") or max(outputs, 2)))],
                   task="regression" if args.regression else "classification")
