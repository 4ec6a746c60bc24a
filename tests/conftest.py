"""Shared fixtures: small seeded networks."""

from __future__ import annotations

import pytest

from tweenstream import Dense, Network


@pytest.fixture
def net_a() -> Network:
    """Shape A of the benchmarks: 8-32-32-4, tanh hidden layers."""
    return Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)])
