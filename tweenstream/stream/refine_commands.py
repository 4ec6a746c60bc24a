"""Refinement on the command line: the ``refine-server`` subcommand, and the refinement flags
of ``serve`` (``--reservoir``, ``--refine-*``, ``--after-refine``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tweenstream.modes import PHASES
from tweenstream.stream.flags import positive


def add_refine_flags(p: argparse.ArgumentParser) -> None:
    """The refinement flags of ``serve``. Refinement is on when ``--reservoir`` is given."""
    g = p.add_argument_group("refinement (backprop on the replay reservoir)")
    g.add_argument("--reservoir", type=positive(int),
                   help="replay reservoir size for a built-in network; turns refinement on")
    g.add_argument("--reservoir-recency", type=float, default=0.0,
                   help="bias of the reservoir toward recent samples, in [0, 1)")
    g.add_argument("--refine-every", type=positive(int), help="refine every N samples")
    g.add_argument("--refine-plateau", type=positive(int), metavar="WINDOW",
                   help="refine when the prequential metric stops improving over WINDOW-sample "
                        "windows (see --refine-min-gain, --refine-patience)")
    g.add_argument("--refine-min-gain", type=float, default=0.005)
    g.add_argument("--refine-patience", type=positive(int), default=3)
    g.add_argument("--refine-drift", action="store_true",
                   help="refine on drift (Page-Hinkley on the running loss)")
    g.add_argument("--refine-server", help="refine-server endpoint (default: in-process)")
    g.add_argument("--refine-timeout", type=positive(float), default=600.0,
                   help="seconds a remote job may take before it counts as failed")
    g.add_argument("--refine-epochs", type=positive(int), default=20)
    g.add_argument("--refine-batch", type=positive(int), default=64)
    g.add_argument("--refine-lr", type=positive(float), default=0.01)
    g.add_argument("--refine-optimizer", choices=("adam", "sgd"), default="adam")
    g.add_argument("--refine-threads", type=int, default=1)
    g.add_argument("--after-refine", choices=PHASES,
                   default="tween", help="phase after a refinement is accepted")


def refinement_from_args(args: argparse.Namespace) -> Any:
    """The ``Refinement`` the flags ask for, or None; raises ValueError on bad values."""
    from tweenstream.runtime.drift import PageHinkley, Plateau
    from tweenstream.runtime.refine import RefineSettings
    from tweenstream.stream.refinement import Refinement

    asked = (args.refine_every, args.refine_plateau, args.refine_drift, args.refine_server)
    if args.reservoir is None:
        if any(asked):
            raise ValueError("the --refine-* flags need --reservoir N (refinement learns from "
                             "the replay reservoir)")
        return None
    settings = RefineSettings(epochs=args.refine_epochs, batch_size=args.refine_batch,
                              learning_rate=args.refine_lr, optimizer=args.refine_optimizer,
                              threads=args.refine_threads, patience=3)
    plateau = Plateau(args.refine_plateau, args.refine_min_gain, args.refine_patience) \
        if args.refine_plateau else None
    return Refinement(settings, after=args.after_refine, every=args.refine_every or 0,
                      drift=PageHinkley() if args.refine_drift else None, plateau=plateau,
                      server=args.refine_server, job_timeout=args.refine_timeout)


def add_refine_server(sub: Any) -> None:
    p = sub.add_parser("refine-server", help="serve backprop refinement jobs to daemons")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5560", help="ROUTER endpoint (bound)")
    p.add_argument("--threads", type=int, default=0,
                   help="threads per job, overriding the job's own setting (0: keep it); "
                        "never more than the cores")
    p.add_argument("--max-epochs", type=positive(int), default=1_000,
                   help="jobs asking for more epochs are refused")
    p.add_argument("--max-queue", type=positive(int), default=8, help="jobs waiting at most")
    p.add_argument("--max-seconds", type=positive(float), help="stop after this long")
    g = p.add_argument_group("Ray (the [ray] extra)")
    g.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="compute each job's gradients on Ray worker actors: the cluster whose "
                        "head is at ADDRESS (HOST:PORT), or without one a local Ray instance "
                        "on loopback")
    g.add_argument("--ray-workers", type=positive(int), default=2,
                   help="worker actors per job (default 2)")
    g.add_argument("--ray-cpus", type=positive(float), default=1.0,
                   help="CPUs each worker actor reserves (fractions allowed; default 1)")
    g.add_argument("--max-running", type=positive(int), default=1,
                   help="jobs run at once, each on its own workers (default 1)")


def run_refine_server(args: argparse.Namespace) -> int:
    """Serve refinement jobs until interrupted (or ``--max-seconds``)."""
    from tweenstream.stream.refine_server import RefineServer

    if args.threads < 0:
        print("tweenstream refine-server: --threads must be >= 0", file=sys.stderr)
        return 2
    workers = None
    if args.ray is not None:
        from functools import partial

        from tweenstream.stream.ray_refine import RayWorkers, ray_module

        try:
            ray_module()
        except ModuleNotFoundError as err:
            print(f"tweenstream refine-server: {err}", file=sys.stderr)
            return 2
        workers = partial(RayWorkers, args.ray_workers,
                          None if args.ray == "local" else args.ray, args.ray_cpus)
    try:
        server = RefineServer(args.endpoint, threads=args.threads, max_queue=args.max_queue,
                              max_epochs=args.max_epochs, workers=workers,
                              max_running=args.max_running)
    except Exception as err:  # zmq refuses the endpoint: say which and why
        print(f"tweenstream refine-server: cannot bind {args.endpoint}: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"event": "serving", "endpoint": server.endpoint}), flush=True)
    try:
        server.serve(max_seconds=args.max_seconds)
    except KeyboardInterrupt:
        server.close()
    finally:
        if args.ray is not None and ray_module().is_initialized():
            ray_module().shutdown()
    print(json.dumps({"event": "stopped", **server.status()}), flush=True)
    return 0
