"""The ``tweenstream`` command: serve, config, send, status, top, keys, refine-server, tune,
export, edge, demo, compile, info.

Subcommands import what they need when they run: ``edge`` and ``status`` never load numba.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    from tweenstream.compile_command import add_compile
    from tweenstream.demo import add_demo
    from tweenstream.edge.server import add_edge
    from tweenstream.export.commands import add_export
    from tweenstream.stream.commands import (
        add_config,
        add_keys,
        add_send,
        add_serve,
        add_status,
    )
    from tweenstream.stream.refine_commands import add_refine_server
    from tweenstream.stream.top import add_top
    from tweenstream.tuning import add_tune

    parser = argparse.ArgumentParser(prog="tweenstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve(sub)
    add_config(sub)
    add_send(sub)
    add_status(sub)
    add_keys(sub)
    add_refine_server(sub)
    add_export(sub)
    add_edge(sub)
    add_demo(sub)
    add_compile(sub)
    add_top(sub)
    add_tune(sub)
    info = sub.add_parser("info", help="describe a saved model")
    info.add_argument("model", type=Path)
    return parser


def info(args: argparse.Namespace) -> int:
    """Print the network, settings and counters of a saved model as JSON."""
    from tweenstream import load
    from tweenstream.runtime.persist import ModelFileError

    try:
        model = load(args.model)
    except ModelFileError as err:
        print(f"tweenstream info: {err}", file=sys.stderr)
        return 2
    st = model.state()
    out = {"network": model.network.to_dict(), "mode": model.config.mode,
           "params": model.network.param_count,
           **{k: st[k] for k in ("phase", "samples_seen", "explosions", "rollbacks")}}
    print(json.dumps(out, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tweenstream`` command; returns the exit code."""
    from tweenstream.compile_command import run_compile
    from tweenstream.demo import run_demo
    from tweenstream.edge.server import run_edge
    from tweenstream.export.commands import run_export
    from tweenstream.stream.commands import (
        run_config,
        run_keys,
        run_send,
        run_serve,
        run_status,
        with_config_file,
    )
    from tweenstream.stream.refine_commands import run_refine_server
    from tweenstream.stream.top import run_top
    from tweenstream.tuning import run_tune

    parser = _parser()
    serve_parser = _subparser(parser, "serve")
    args = parser.parse_args(argv)
    if args.command == "serve":  # the config file's values become the flags' defaults
        from tweenstream.stream.serve_file import ConfigFileError

        try:
            args = with_config_file(parser, serve_parser, argv, args)
        except ConfigFileError as err:
            print(f"tweenstream serve: {err}", file=sys.stderr)
            return 2
    handlers = {"config": lambda a: run_config(a, serve_parser),
                "serve": lambda a: run_serve(a, serve_parser),
                "send": run_send, "status": run_status, "keys": run_keys,
                "refine-server": run_refine_server,
                "export": run_export, "edge": run_edge, "demo": run_demo, "compile": run_compile,
                "info": info, "top": run_top, "tune": run_tune}
    try:
        return handlers[args.command](args)
    except ModuleNotFoundError as err:
        if err.name not in NEEDS_FULL_INSTALL:
            raise
        print(f"tweenstream {args.command}: needs {err.name}, which this install lacks (an "
              "edge install has only what `tweenstream edge` needs); install the full package "
              "with its dependencies to use it (docs/deployment.md, \"The edge predictor\")",
              file=sys.stderr)
        return 2


def serve_parser() -> argparse.ArgumentParser:
    """The parser of ``tweenstream serve`` (its flags, types and defaults)."""
    return _subparser(_parser(), "serve")


def serve_defaults() -> argparse.Namespace:
    """The ``serve`` flags at their defaults, as ``run_serve`` receives them.

    Examples
    --------
    >>> serve_defaults().max_streams
    1024
    """
    args = _parser().parse_args(["serve"])
    args.file_settings, args.file_models = {}, {}
    return args


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


# what an edge install leaves out (docs/deployment.md): the commands that need them say so
NEEDS_FULL_INSTALL = ("numba", "llvmlite", "tqdm", "onnx", "ml_dtypes")
