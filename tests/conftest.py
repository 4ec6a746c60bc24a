"""Shared fixtures: small seeded networks.

The suite builds networks of some thirty different kind sets; compiling an engine per set
would take most of the CI budget on a cold cache. Every Learner of the suite (and of the
daemons it starts) therefore shares one engine of all kinds (``TWEENSTREAM_ENGINE=all``); the
tests of per-kind-set engines (tests/test_dispatch.py, test_determinism.py) ask for them.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TWEENSTREAM_ENGINE", "all")

from tweenstream import Dense, Network


@pytest.fixture
def net_a() -> Network:
    """Shape A of the benchmarks: 8-32-32-4, tanh hidden layers."""
    return Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)])


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance of 2 CPUs on loopback, for the whole session (the [ray] extra,
    which ``make test`` installs); shut down at the end. ``stream_helpers.RAY_LISTENERS``
    holds the listening sockets that appeared when it started."""
    ray = pytest.importorskip("ray")
    from stream_helpers import RAY_LISTENERS, listening_sockets

    from tweenstream.stream.ray_refine import connect

    before = listening_sockets()
    connect(None, num_cpus=2)
    RAY_LISTENERS.update(listening_sockets() - before)
    yield ray
    ray.shutdown()


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test`` runs two workers), every test that uses the local Ray
    instance runs on one worker, so the session starts one instance, not one per worker."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec else ()
        ray = any(isinstance(v, str) and v == "ray" for v in params)
        if ray or "ray_local" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("ray"))
