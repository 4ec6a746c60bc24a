"""One (peer, shape, seed) run, meant to run alone in a fresh process.

Usage: ``python -m bench.peers.one --peer P --shape S --samples N --seed K [--warmup W]``.
Prints one JSON line: the measured record, or ``{"installed": false, ...}`` when the peer's
library cannot be imported. The process learns nothing else, so its peak resident set belongs
to this peer (plus the interpreter, NumPy and the stream, which every peer shares).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.peers.adapters import PEERS, Peer
from bench.peers.streams import SHAPES, Shape

WARMUP = 200  # samples learned before the timed loop: not timed, not scored
MB = 1024 * 1024


def peak_rss_mb() -> float:
    """Peak resident set of this process so far, in MB (``ru_maxrss`` is in KiB on Linux)."""
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MB


def rss_mb() -> float:
    """Current resident set of this process, in MB (the peak if /proc is not there)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return peak_rss_mb()


def timed_loop(peer: Peer, X: np.ndarray, y: Sequence[int]) -> float:
    """Test-then-train over every row; returns the wall time in seconds."""
    learn = peer.learn_one
    start = time.perf_counter()
    for x, t in zip(X, y, strict=True):
        learn(x, t)
    return time.perf_counter() - start


def measure(peer: Peer, shape: Shape, samples: int, seed: int,
            warmup: int = WARMUP) -> dict[str, Any]:
    """Build ``peer`` on ``shape``, learn ``warmup`` samples untimed, then time ``samples``
    more; returns the record (see the keys below). Calls ``peer.load()`` first."""
    peer.load()
    X, y = shape.make(warmup + samples, seed)
    labels = y.tolist()
    peer.build(shape, seed)
    timed_loop(peer, X[:warmup], labels[:warmup])
    seen0, correct0 = peer.scored()
    rss_start = rss_mb()
    seconds = timed_loop(peer, X[warmup:], labels[warmup:])
    rss_end = rss_mb()
    seen, correct = peer.scored()
    if seen - seen0 != samples:
        raise RuntimeError(f"{peer.name} scored {seen - seen0} of {samples} samples")
    return {
        "peer": peer.name, "version": peer.version(), "shape": shape.name,
        "params": int(peer.params), "seed": seed, "samples": samples,
        "prequential_accuracy": (correct - correct0) / samples,
        "us_per_sample": seconds * 1e6 / samples,
        "peak_rss_mb": max(peak_rss_mb(), rss_start, rss_end),
        "rss_growth_mb": rss_end - rss_start,
        "rss_start_mb": rss_start,
        "warmup": warmup,
    }


def run(peer_name: str, shape_name: str, samples: int, seed: int,
        warmup: int = WARMUP) -> dict[str, Any]:
    """``measure`` for peers and shapes given by name; a peer whose import fails gives
    ``{"peer", "shape", "seed", "installed": False, "reason"}`` instead."""
    peer = PEERS[peer_name]()
    try:
        return measure(peer, SHAPES[shape_name], samples, seed, warmup)
    except ImportError as exc:
        return {"peer": peer_name, "shape": shape_name, "seed": seed, "installed": False,
                "reason": f"{type(exc).__name__}: {exc}"}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run, print the JSON line."""
    p = argparse.ArgumentParser(prog="python -m bench.peers.one", description=__doc__)
    p.add_argument("--peer", required=True, choices=list(PEERS))
    p.add_argument("--shape", required=True, choices=list(SHAPES))
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, default=WARMUP)
    args = p.parse_args(argv)
    if args.samples < 1 or args.warmup < 0:
        p.error("--samples must be >= 1 and --warmup >= 0")
    print(json.dumps(run(args.peer, args.shape, args.samples, args.seed, args.warmup)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
