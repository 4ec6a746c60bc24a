"""Seeded synthetic sources: the drifting quadrant stream and the classic 2-D toy sets.

Every generator takes a seed and returns float32 features and int64 labels, so a run can be
repeated exactly. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

TOY_SETS = ("xor", "moons", "circles", "spirals")


def drifting_quadrants(n: int, *, n_features: int = 8, switch_at: int | None = None,
                       noise: float = 0.0, chunk: int = 1000,
                       seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The default stream: an 8-input, 4-class quadrant task whose labelling rule switches.

    Inputs are uniform in [-1, 1]. Before ``switch_at`` (default: halfway) the class is the
    quadrant of (x0, x1): 2*[x0 > 0] + [x1 > 0]. From then on it is the quadrant of (x2, x3),
    rotated by one class, so the old rule is not just relabelled. The other inputs are
    distractors. ``noise`` flips that fraction of labels to a random class. Yields chunks of
    ``(X (m, n_features) float32, y (m,) int64)``.

    Examples
    --------
    >>> X, y = next(drifting_quadrants(10, chunk=5))
    >>> X.shape, y.dtype.name, int(y.max()) < 4
    ((5, 8), 'int64', True)
    """
    if n_features < 4:
        raise ValueError("n_features must be >= 4 (two pairs of quadrant inputs), "
                         f"found {n_features}")
    if n < 0 or chunk < 1:
        raise ValueError(f"n must be >= 0 and chunk >= 1, found n={n}, chunk={chunk}")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be in [0, 1], found {noise}")
    rng = np.random.default_rng(seed)
    switch = n // 2 if switch_at is None else switch_at
    start = 0
    while start < n:
        m = min(chunk, n - start)
        X = rng.uniform(-1.0, 1.0, size=(m, n_features)).astype(np.float32)
        before = 2 * (X[:, 0] > 0) + (X[:, 1] > 0)
        after = (2 * (X[:, 2] > 0) + (X[:, 3] > 0) + 1) % 4
        idx = np.arange(start, start + m)
        y = np.where(idx < switch, before, after).astype(np.int64)
        if noise > 0:
            flip = rng.random(m) < noise
            y[flip] = rng.integers(0, 4, size=int(flip.sum()))
        yield X, y
        start += m


def toy_set(name: str, n: int, *, noise: float = 0.1,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D binary toy set: ``xor``, ``moons``, ``circles`` or ``spirals``, shuffled.

    Examples
    --------
    >>> X, y = toy_set("moons", 100, seed=3)
    >>> X.shape, sorted(set(y.tolist()))
    ((100, 2), [0, 1])
    """
    if name not in TOY_SETS:
        raise ValueError(f"unknown toy set {name!r}; use one of {', '.join(TOY_SETS)}")
    if n < 2:
        raise ValueError(f"n must be >= 2, found {n}")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    if name == "xor":
        X = rng.uniform(-1.0, 1.0, size=(n, 2))
        y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(np.int64)
    elif name == "moons":
        t = rng.uniform(0.0, np.pi, size=n)
        X = np.where(y[:, None] == 0,
                     np.stack([np.cos(t), np.sin(t)], 1),
                     np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], 1))
    elif name == "circles":
        t = rng.uniform(0.0, 2 * np.pi, size=n)
        r = np.where(y == 0, 1.0, 0.5)
        X = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    else:
        t = rng.uniform(0.25, 1.0, size=n) * 3 * np.pi
        X = np.stack([t * np.cos(t + np.pi * y), t * np.sin(t + np.pi * y)], 1) / (3 * np.pi)
    X = X + noise * rng.standard_normal(size=X.shape)
    return X.astype(np.float32), y.astype(np.int64)
