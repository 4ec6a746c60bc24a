"""Runs every (peer, shape, seed) in its own fresh process and collects the records.

A child that cannot import its peer's library reports it and the peer's other runs are skipped;
a child that fails or times out is recorded as failed, and the comparison goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 1800.0  # seconds for one child run
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
Record = dict[str, Any]


@dataclass(frozen=True)
class Job:
    """One run: a peer learning a shape's stream from one seed."""

    peer: str
    shape: str
    samples: int
    seed: int
    warmup: int

    def argv(self) -> list[str]:
        """The child's command line."""
        return [sys.executable, "-m", "bench.peers.one", "--peer", self.peer, "--shape",
                self.shape, "--samples", str(self.samples), "--seed", str(self.seed),
                "--warmup", str(self.warmup)]


def numba_cache_dir() -> Path:
    """Where the children cache tweenstream's compiled kernels when NUMBA_CACHE_DIR is not set:
    build/numba-cache/<hash of the package sources>, as the Makefile does."""
    src = ROOT / "tweenstream"
    files = sorted(src.glob("*.py")) + sorted(src.glob("*/*.py"))
    digest = hashlib.sha1(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]
    return ROOT / "build" / "numba-cache" / digest


def child_env() -> dict[str, str]:
    """The environment of a child: one thread for every math library, a Numba cache."""
    env = dict(os.environ)
    env.update(dict.fromkeys(THREAD_VARS, "1"))
    env.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def failed(job: Job, reason: str) -> Record:
    """The record of a run that did not produce a result."""
    return {"peer": job.peer, "shape": job.shape, "seed": job.seed, "failed": True,
            "reason": reason}


def in_subprocess(job: Job) -> Record:
    """Run ``job`` in a fresh Python process and parse the JSON line it prints."""
    try:
        done = subprocess.run(job.argv(), cwd=ROOT, env=child_env(), capture_output=True,
                              text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return failed(job, f"timed out after {TIMEOUT:.0f} s")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        return failed(job, f"exit code {done.returncode}: {tail}"[:500])
    return json.loads(lines[-1])


def jobs(peers: Sequence[str], shapes: Sequence[str], seeds: Sequence[int],
         samples: dict[str, int], warmup: int) -> list[Job]:
    """Every run, shape by shape, then peer by peer, then seed by seed."""
    return [Job(p, s, samples[s], k, warmup) for s in shapes for p in peers for k in seeds]


def collect(todo: Iterable[Job], runner: Callable[[Job], Record] = in_subprocess,
            progress: Callable[[str], None] | None = None) -> list[Record]:
    """Run every job with ``runner``; a peer reported not installed is not run again, and its
    first report stands for all its runs."""
    records: list[Record] = []
    missing: set[str] = set()
    todo = list(todo)
    for i, job in enumerate(todo, 1):
        if job.peer in missing:
            continue
        record = runner(job)
        if record.get("installed") is False:
            missing.add(job.peer)
        records.append(record)
        if progress is not None:
            progress(f"[{i}/{len(todo)}] {describe(record)}")
    return records


def describe(record: Record) -> str:
    """One progress line for a record."""
    head = f"{record['peer']} {record['shape']} seed {record['seed']}"
    if record.get("installed") is False:
        return f"{head}: not installed ({record['reason']})"
    if record.get("failed"):
        return f"{head}: FAILED ({record['reason']})"
    return (f"{head}: accuracy {record['prequential_accuracy']:.3f}, "
            f"{record['us_per_sample']:.1f} µs/sample, peak RSS {record['peak_rss_mb']:.0f} MB")
