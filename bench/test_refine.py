"""Throughput of backprop refinement: training samples per second in one epoch, for shapes B
and C on 1 and 2 threads. ``direct`` times ``refine`` itself (what a refine-server runs per
job); ``server`` times a whole job through a refine-server over loopback tcp: submit, queue,
one epoch, held-out metrics, and the refined weights coming back."""

from __future__ import annotations

import numpy as np
import pytest

from tweenstream import Dense, Learner, Network
from tweenstream.runtime.refine import RefineSettings, refine
from tweenstream.stream.client import Control
from tweenstream.stream.refine_server import RefineServer, refine_remote

SHAPES = {"B": (64, (128, 128), 10), "C": (784, (256, 128), 10)}
ROWS = {"B": 8_000, "C": 2_000}  # reservoir rows; 80% train, 20% held out


def _job(shape: str):
    n_in, hidden, k = SHAPES[shape]
    # unscaled, as a refine-server runs a job (the daemon sends rows it has scaled)
    model = Learner(Network(n_in, [*(Dense(h, "tanh") for h in hidden), Dense(k)]), seed=0,
                    scaling="off")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((ROWS[shape], n_in)).astype(np.float32)
    y = rng.integers(0, k, ROWS[shape])
    return model, X, y


def _info(benchmark, shape: str, threads: int, how: str, batch: int, model: Learner) -> None:
    train = ROWS[shape] - round(0.2 * ROWS[shape])
    benchmark.extra_info.update(table="refine", shape=shape, threads=threads, how=how,
                                batch=batch, samples=train, params=model.network.param_count)


@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", SHAPES)
def test_refine_epoch(benchmark, shape, threads, batch):
    model, X, y = _job(shape)
    settings = RefineSettings(epochs=1, batch_size=batch, threads=threads)
    refine(model, X[:600], y[:600], settings)  # compile (or load) the kernels before timing
    _info(benchmark, shape, threads, "direct", batch, model)
    benchmark.pedantic(refine, args=(model, X, y, settings), rounds=5, iterations=1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", SHAPES)
def test_refine_server_job(benchmark, shape, threads):
    import threading

    model, X, y = _job(shape)
    settings = RefineSettings(epochs=1, batch_size=64, threads=threads)
    server = RefineServer("tcp://127.0.0.1:*")
    thread = threading.Thread(target=server.serve, args=(600.0,), daemon=True)
    thread.start()
    jobs = iter(range(1_000))
    with Control(server.endpoint, timeout=60, retries=1) as control:
        def one_job():
            return refine_remote(control, f"job{next(jobs)}", model, X, y, settings,
                                 job_timeout=600, poll_s=0.001)

        one_job()  # compile (or load) the server's kernels before timing
        _info(benchmark, shape, threads, "server", 64, model)
        benchmark.pedantic(one_job, rounds=5, iterations=1)
    server.stop()
    thread.join(20)


@pytest.mark.parametrize("reservoir", [0, 1_000])
def test_learn_one_with_a_reservoir(benchmark, reservoir):
    """What keeping a replay reservoir adds to one online step (shape A, tween)."""
    import itertools

    net = Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)])
    model = Learner(net, mode="tween", seed=0, reservoir_size=reservoir)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2_000, 8)).astype(np.float32)
    stream = itertools.cycle(list(zip(X, rng.integers(0, 4, 2_000).tolist(), strict=True)))
    for _ in range(1_500):  # compile, and fill the reservoir
        model.learn_one(*next(stream))
    benchmark.extra_info.update(table="refine", how="learn_one", reservoir=reservoir)
    benchmark(lambda: model.learn_one(*next(stream)))


@pytest.fixture(scope="module")
def ray_workers():
    """Ray worker actors on a local instance of this machine's cores, kept warm between
    rounds as a refine-server keeps them (one group per worker count)."""
    pytest.importorskip("ray")
    from tweenstream.stream.ray_refine import RayWorkers, connect

    ray = connect(None)
    groups = {w: RayWorkers(w, cpus_per_worker=0.5) for w in (1, 2)}
    yield groups
    for group in groups.values():
        group.reset()
    ray.shutdown()


@pytest.mark.parametrize("batch", [64, 256])
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("shape", SHAPES)
def test_refine_epoch_ray(benchmark, ray_workers, shape, workers, batch):
    """``refine`` with its gradients on Ray actors: the same job as ``test_refine_epoch``."""
    model, X, y = _job(shape)
    settings = RefineSettings(epochs=1, batch_size=batch, threads=workers)
    group = ray_workers[workers]
    refine(model, X[:600], y[:600], settings, workers=group)  # actors up, kernels loaded
    _info(benchmark, shape, workers, "ray", batch, model)
    benchmark.pedantic(refine, args=(model, X, y, settings), kwargs={"workers": group},
                       rounds=3, iterations=1)
