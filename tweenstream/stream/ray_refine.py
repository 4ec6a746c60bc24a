"""Backprop refinement on a Ray cluster (``tweenstream refine-server --ray [ADDRESS]``).

``RayWorkers`` computes a refinement job's minibatch gradients on worker actors of a Ray
cluster (the optional extra ``[ray]``). Per job, the training rows go to the object store once
and every actor keeps a reference; per minibatch step the parameters go to the object store
once (or, up to 64 KiB, inside each call), each actor sums the gradients of its share of the
rows (row t of every W, as the threads of ``ThreadWorkers`` do) and the driver sums the actors'
results in actor order, so a job gives
the same parameters, bit for bit, on W actors as on W threads. The optimiser step, early
stopping and the held-out evaluation stay in the refine-server (``runtime/refine.py``).

Actors outlive jobs, so their compiled kernels stay warm. A refine-server runs up to
``max_running`` jobs at once, each on its own group of actors. A worker that dies mid-job
fails that job (``WorkerLost``): nothing partial is returned, and the next job gets fresh
actors. A cluster that cannot be reached when a job starts raises ``ClusterUnavailable``; the
refine-server then runs the job in its own threads, as without Ray, and counts a fallback.

Without an address, a local Ray instance is started, bound to loopback only.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import numpy as np

from tweenstream.runtime.refine import GradientShare

INLINE_BYTES = 64 << 10  # parameters up to this size are sent with each call


class ClusterUnavailable(ConnectionError):
    """The Ray cluster cannot be reached (or refuses to start the job's actors)."""


class WorkerLost(RuntimeError):
    """A worker actor died, or did not answer in time, during a job."""


def ray_module() -> Any:
    """Ray itself, or a ``ModuleNotFoundError`` that says how to install it."""
    try:
        import ray
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("the Ray backend needs the ray package: pip install "
                                  "'tweenstream[ray]'", name=err.name) from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Join the Ray cluster at ``address`` (``HOST:PORT`` of its head), or start a local
    instance on loopback; returns the ray module. ``ClusterUnavailable`` if nothing answers at
    ``address`` (checked with a plain TCP connection first: Ray itself waits minutes)."""
    ray = ray_module()
    if address is not None:  # before every job: a head that went away is noticed at once
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2.0):
                pass
        except (OSError, ValueError) as err:
            raise ClusterUnavailable(f"no Ray cluster answers at {address}: {err}") from None
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    if address is not None:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="warning")
        except Exception as err:  # Ray raises several kinds: say what and where
            raise ClusterUnavailable(f"cannot join the Ray cluster at {address}: "
                                     f"{type(err).__name__}: {err}") from None
        return ray
    ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level="warning")
    return ray


class _Worker:
    """One actor: a ``GradientShare`` of the current job (kernels stay compiled between)."""

    def __init__(self) -> None:
        self.share: GradientShare | None = None

    def begin(self, network: dict[str, Any], X: np.ndarray, Yc: np.ndarray,
              Yr: np.ndarray, loss: tuple[str, float] = ("auto", 0.9)) -> int:
        from tweenstream.models.network import Network

        # the object store hands out read-only arrays: the kernels are compiled for writable
        # ones, so one copy per job (not per step) keeps them on their compiled signature
        self.share = GradientShare(Network.from_dict(network), np.array(X), np.array(Yc),
                                   np.array(Yr), loss=tuple(loss))  # type: ignore[arg-type]
        return os.getpid()

    def accumulate(self, params: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if self.share is None:
            raise RuntimeError("begin() first")
        return self.share.accumulate(params, rows).copy()

    def pid(self) -> int:
        return os.getpid()


class RayWorkers:
    """``count`` gradient workers on a Ray cluster, for ``refine(..., workers=...)``.

    ``cpus_per_worker`` is what each actor reserves from Ray's scheduler (fractions allowed:
    two jobs of two workers fit a 2-CPU machine at 0.5). ``timeout`` bounds each step.

    Examples
    --------
    >>> RayWorkers(2, address="127.0.0.1:6379").count
    2
    """

    def __init__(self, count: int = 2, address: str | None = None,
                 cpus_per_worker: float = 1.0, timeout: float = 600.0) -> None:
        if type(count) is not int or count < 1:
            raise ValueError(f"count must be an int >= 1, found {count!r}")
        if not cpus_per_worker > 0 or not timeout > 0:
            raise ValueError("cpus_per_worker and timeout must be > 0")
        self.count, self.address = count, address
        self.cpus_per_worker, self.timeout = cpus_per_worker, timeout
        self.actors: list[Any] = []

    def begin(self, learner: Any, X: np.ndarray, Yc: np.ndarray, Yr: np.ndarray) -> int:
        """Send a job's rows to the object store once and set up every actor's buffers."""
        ray = connect(self.address)
        try:
            if not self.actors:
                remote = ray.remote(_Worker).options(num_cpus=self.cpus_per_worker)
                self.actors = [remote.remote() for _ in range(self.count)]
            refs = [ray.put(np.ascontiguousarray(a)) for a in (X, Yc, Yr)]
            network = learner.network.to_dict()
            loss = (learner.config.loss, float(learner.config.cosine_weight))
            ray.get([a.begin.remote(network, *refs, loss) for a in self.actors],
                    timeout=self.timeout)
        except Exception as err:
            self.reset()
            raise ClusterUnavailable(f"the Ray cluster could not start the job's workers: "
                                     f"{type(err).__name__}: {err}") from None
        return self.count

    def accumulate(self, params: np.ndarray, shares: list[np.ndarray]) -> list[np.ndarray]:
        """Each actor's summed gradient of its rows, in actor order; ``WorkerLost`` if one
        dies or does not answer within ``timeout``."""
        ray = ray_module()
        try:
            # small parameter vectors travel inside the calls (cheaper than the object store);
            # large ones go to the store once and every actor reads the same copy
            ref = params if params.nbytes <= INLINE_BYTES else ray.put(params)
            return list(ray.get([a.accumulate.remote(ref, rows)
                                 for a, rows in zip(self.actors, shares, strict=True)],
                                timeout=self.timeout))
        except Exception as err:
            self.reset()
            raise WorkerLost(f"a Ray worker was lost mid-job: {type(err).__name__}: "
                             f"{err}") from None

    def end(self) -> None:
        """Nothing to release: the actors stay for the next job, and the job's rows leave the
        object store with their last reference."""

    def pids(self) -> list[int]:
        """The worker processes' ids (e.g. to watch them, or to stop one in a test)."""
        ray = ray_module()
        return list(ray.get([a.pid.remote() for a in self.actors], timeout=self.timeout))

    def reset(self) -> None:
        """Drop every actor (the next job starts fresh ones)."""
        if self.actors:
            ray = ray_module()
            for actor in self.actors:
                try:
                    ray.kill(actor)
                except Exception:  # already gone with its node or process
                    pass
        self.actors = []
