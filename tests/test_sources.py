"""Synthetic sources: seeded, switching where they say, with clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from tweenstream.stream import TOY_SETS, drifting_quadrants, toy_set


def test_drifting_quadrants_switch_rule():
    chunks = list(drifting_quadrants(1_000, switch_at=600, chunk=300, seed=1))
    assert [len(y) for _, y in chunks] == [300, 300, 300, 100]
    X = np.concatenate([c[0] for c in chunks])
    y = np.concatenate([c[1] for c in chunks])
    before = 2 * (X[:, 0] > 0) + (X[:, 1] > 0)
    after = (2 * (X[:, 2] > 0) + (X[:, 3] > 0) + 1) % 4
    assert np.array_equal(y[:600], before[:600]) and np.array_equal(y[600:], after[600:])
    again = np.concatenate([c[0] for c in drifting_quadrants(1_000, chunk=300, seed=1)])
    assert np.array_equal(X, again)


def test_label_noise_flips_about_that_fraction():
    X, y = next(drifting_quadrants(20_000, switch_at=20_000, chunk=20_000, noise=0.2, seed=0))
    clean = 2 * (X[:, 0] > 0) + (X[:, 1] > 0)
    assert 0.12 < float((y != clean).mean()) < 0.18  # 20% drawn, a quarter of them unchanged


@pytest.mark.parametrize("name", TOY_SETS)
def test_toy_sets_are_seeded_and_balanced(name):
    X, y = toy_set(name, 2_000, seed=5)
    assert X.shape == (2_000, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert 0.4 < y.mean() < 0.6
    assert np.array_equal(X, toy_set(name, 2_000, seed=5)[0])


@pytest.mark.parametrize("call, message", [
    (lambda: next(drifting_quadrants(10, n_features=3)), r"n_features must be >= 4"),
    (lambda: next(drifting_quadrants(10, chunk=0)), r"n must be >= 0 and chunk >= 1"),
    (lambda: next(drifting_quadrants(10, noise=1.5)), r"noise must be in \[0, 1\], found 1.5"),
    (lambda: toy_set("swirl", 10), r"unknown toy set 'swirl'; use one of xor, moons"),
    (lambda: toy_set("xor", 1), r"n must be >= 2, found 1"),
])
def test_source_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
