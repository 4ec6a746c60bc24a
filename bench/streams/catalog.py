"""The streams of the suite: River's bundled datasets and seeded synthetic generators.

Each ``Spec`` names one River stream, its task, its class labels (in the order that gives them
indices) and its default length. ``load`` materialises the first samples of a stream as River
yields them (dicts and labels, untouched), so that every model sees the same samples in the
same order and no generator runs inside a timed loop. Nothing is downloaded: a bundled dataset
must be a ``FileDataset`` whose file ships inside the River package, and ``load`` refuses a
``RemoteDataset``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

SEED = 42  # seed of every synthetic generator (and of every seeded model, see runs.py)
SYNTHETIC_LENGTH = 10_000  # samples of every synthetic stream
DRIFT_POSITION, DRIFT_WIDTH = 5_000, 1_000  # River's ConceptDriftStream defaults, stated

Sample = tuple[dict[Any, Any], Any]


@dataclass(frozen=True)
class Spec:
    """One stream of the suite.

    Parameters
    ----------
    name : str
        Row name in the table.
    task : {"classification", "regression"}
    classes : tuple
        The class labels River yields, in index order (empty for regression).
    length : int
        Default samples: the whole dataset (bundled) or ``SYNTHETIC_LENGTH`` (synthetic).
    source : {"bundled", "synthetic"}
    about : str
        The exact River construction, for the report's notes.
    make : callable
        A fresh River dataset.
    """

    name: str
    task: str
    classes: tuple[Any, ...]
    length: int
    source: str
    about: str
    make: Callable[[], Iterable[Sample]]

    @property
    def metric(self) -> str:
        """``"accuracy"`` (classification) or ``"mae"`` (regression)."""
        return "accuracy" if self.task == "classification" else "mae"


@dataclass(frozen=True)
class Stream:
    """The samples of one stream, as River yields them.

    ``keys`` is the fixed, sorted feature order that array input uses.
    """

    spec: Spec
    samples: list[Sample]
    keys: tuple[Any, ...]

    @property
    def n_features(self) -> int:
        """Features per sample."""
        return len(self.keys)

    def __len__(self) -> int:
        return len(self.samples)


def _datasets() -> Any:
    from river import datasets

    return datasets


def _synth() -> Any:
    from river.datasets import synth

    return synth


def _phishing() -> Any:
    return _datasets().Phishing()


def _bananas() -> Any:
    return _datasets().Bananas()


def _chick_weights() -> Any:
    return _datasets().ChickWeights()


def _sea_drift() -> Any:
    synth = _synth()
    return synth.ConceptDriftStream(stream=synth.SEA(variant=0, seed=SEED),
                                    drift_stream=synth.SEA(variant=1, seed=SEED), seed=1,
                                    position=DRIFT_POSITION, width=DRIFT_WIDTH)


def _sine_drift() -> Any:
    synth = _synth()
    return synth.ConceptDriftStream(
        stream=synth.Sine(classification_function=0, seed=SEED),
        drift_stream=synth.Sine(classification_function=2, seed=SEED), seed=1,
        position=DRIFT_POSITION, width=DRIFT_WIDTH)


def _waveform() -> Any:
    return _synth().Waveform(seed=SEED)


def _random_tree() -> Any:
    return _synth().RandomTree(seed_tree=SEED, seed_sample=SEED)


def _planes() -> Any:
    return _synth().Planes2D(seed=SEED)


_DRIFT = f"position={DRIFT_POSITION}, width={DRIFT_WIDTH}"
SPECS: dict[str, Spec] = {s.name: s for s in (
    Spec("phishing", "classification", (False, True), 1_250, "bundled",
         "`datasets.Phishing()`: 1,250 web pages, 9 numeric features, bool label", _phishing),
    Spec("bananas", "classification", (False, True), 5_300, "bundled",
         "`datasets.Bananas()`: 5,300 points, 2 numeric features, bool label", _bananas),
    Spec("chick-weights", "regression", (), 578, "bundled",
         "`datasets.ChickWeights()`: 578 weighings, features time (days), chick (an id) and "
         "diet (1-4), all ints and used as numbers; target the weight in grams", _chick_weights),
    Spec("sea-drift", "classification", (False, True), SYNTHETIC_LENGTH, "synthetic",
         "`synth.ConceptDriftStream(stream=synth.SEA(variant=0, seed=42), "
         f"drift_stream=synth.SEA(variant=1, seed=42), seed=1, {_DRIFT})` (River's documented "
         "example, at its default position and width): 3 features in [0, 10], label "
         "x0 + x1 > 8, drifting to > 9 around sample 5,000", _sea_drift),
    Spec("sine-drift", "classification", (0, 1), SYNTHETIC_LENGTH, "synthetic",
         "`synth.ConceptDriftStream(stream=synth.Sine(classification_function=0, seed=42), "
         f"drift_stream=synth.Sine(classification_function=2, seed=42), seed=1, {_DRIFT})`: "
         "2 features in [0, 1], SINE1 (below y = sin x) drifting to SINE2 (below "
         "0.5 + 0.3 sin 3πx) around sample 5,000", _sine_drift),
    Spec("waveform", "classification", (0, 1, 2), SYNTHETIC_LENGTH, "synthetic",
         "`synth.Waveform(seed=42)`: 21 numeric features, 3 classes", _waveform),
    Spec("random-tree", "classification", (0, 1), SYNTHETIC_LENGTH, "synthetic",
         "`synth.RandomTree(seed_tree=42, seed_sample=42)` (defaults: 2 classes, 5 numeric "
         "features in [0, 1], 5 categorical ones given as int codes 0-4 and used as numbers, "
         "depth 5)", _random_tree),
    Spec("planes2d", "regression", (), SYNTHETIC_LENGTH, "synthetic",
         "`synth.Planes2D(seed=42)`: 10 features in {-1, 0, 1}, piecewise-linear target with "
         "N(0, 1) noise", _planes),
)}


def _check_local(dataset: Any, name: str) -> None:
    """Refuse a dataset that would download, or whose bundled file is missing."""
    from river.datasets import base

    if isinstance(dataset, base.RemoteDataset):
        raise RuntimeError(f"stream {name!r} is a RemoteDataset (it downloads); the suite "
                           "uses only datasets bundled with River")
    path = getattr(dataset, "path", None)
    if isinstance(dataset, base.FileDataset) and not Path(path).exists():
        raise FileNotFoundError(f"stream {name!r}: River's bundled file {path} is missing")


def load(name: str, limit: int | None = None) -> Stream:
    """The first ``limit`` samples (default: the spec's length) of stream ``name``.

    Examples
    --------
    >>> s = load("phishing", limit=3)
    >>> len(s), s.n_features, s.spec.metric
    (3, 9, 'accuracy')
    """
    spec = SPECS[name]
    n = spec.length if limit is None else min(limit, spec.length)
    if n < 1:
        raise ValueError(f"limit must be >= 1, found {limit}")
    dataset = spec.make()
    _check_local(dataset, name)
    samples = [(x, y) for x, y in islice(dataset, n)]
    if len(samples) != n:
        raise RuntimeError(f"stream {name!r} gave {len(samples)} samples, expected {n}")
    keys = tuple(sorted(samples[0][0]))
    known = set(spec.classes)
    for i, (x, y) in enumerate(samples):
        if len(x) != len(keys) or any(k not in x for k in keys):
            raise ValueError(f"stream {name!r}, sample {i}: features {sorted(x)} differ from "
                             f"the first sample's {list(keys)}")
        if spec.classes and y not in known:
            raise ValueError(f"stream {name!r}, sample {i}: label {y!r} is not one of "
                             f"{spec.classes}; add it to the spec")
    return Stream(spec, samples, keys)
