"""One (model, stream) run: prequential score and µs per sample, as one record.

Three ways to run, each with a fresh model:

- ``river(name, stream)``: River's ``predict_one(x)``, scored, then ``learn_one(x, y)``, per
  sample on River's dicts;
- ``tweenstream_one(mode, stream)``: the same loop through ``Learner.predict_one`` and
  ``Learner.learn_one`` on dicts, each sample first passed through the ``Adapter`` (inside
  the timed loop: today's users pay for it too);
- ``tweenstream_many(mode, stream)``: one ``Learner.learn_many`` call on the whole stream as a
  float32 array; the score is read from the learner's own test-then-train counters
  (``Learner.totals()``), which score each sample before learning it.

Compile time is never timed (``make_learner`` warms the kernels). The score is prequential
accuracy (a prediction of ``None`` counts as wrong) or prequential MAE (``None`` counts as 0).
``trivial(stream)`` scores the trivial predictor the same way (majority class or mean so far).
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

from bench.streams import tweenstream_models as tsm
from bench.streams.catalog import Stream
from bench.streams.river_models import RIVER_MODELS

Record = dict[str, Any]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _record(stream: Stream, model: str, family: str, way: str, value: float, seconds: float,
            **extra: Any) -> Record:
    n = len(stream)
    return {"stream": stream.spec.name, "model": model, "family": family, "way": way,
            "task": stream.spec.task, "metric": stream.spec.metric, "value": value,
            "samples": n, "seconds": seconds, "us_per_sample": seconds * 1e6 / n, **extra}


def _failed(stream: Stream, model: str, family: str, way: str, exc: Exception,
            **extra: Any) -> Record:
    return {"stream": stream.spec.name, "model": model, "family": family, "way": way,
            "task": stream.spec.task, "metric": stream.spec.metric, "samples": len(stream),
            "failed": True, "reason": f"{type(exc).__name__}: {exc}", **extra}


def river(name: str, stream: Stream) -> Record:
    """A fresh River model ``name`` over ``stream``, test-then-train, one sample at a time."""
    spec = stream.spec
    model = RIVER_MODELS[name].make(spec.task, len(spec.classes))
    predict, learn = model.predict_one, model.learn_one
    classify = spec.task == "classification"
    total = 0.0
    start = time.perf_counter()
    for x, y in stream.samples:
        p = predict(x)
        if classify:
            total += p == y
        else:
            total += abs((0.0 if p is None else p) - y)
        learn(x, y)
    seconds = time.perf_counter() - start
    return _record(stream, name, "river", "learn_one", float(total) / len(stream), seconds,
                   version=_version("river"), settings={})


def trivial(stream: Stream) -> Record:
    """The trivial prequential baseline: the most frequent class so far (classification), or
    the mean of the targets so far (regression; 0 before the first)."""
    classify = stream.spec.task == "classification"
    counts: dict[Any, int] = {}
    top: Any = None
    mean, total = 0.0, 0.0
    start = time.perf_counter()
    for i, (_, y) in enumerate(stream.samples):
        if classify:
            total += top == y
            counts[y] = counts.get(y, 0) + 1
            if top is None or counts[y] > counts[top]:
                top = y
        else:
            total += abs(mean - y)
            mean += (y - mean) / (i + 1)
    seconds = time.perf_counter() - start
    return _record(stream, "majority" if classify else "mean", "baseline", "learn_one",
                   float(total) / len(stream), seconds, version="", settings={})


def _learner(stream: Stream, mode: str, settings: dict[str, Any]) -> Any:
    spec = stream.spec
    return tsm.make_learner(stream.n_features, spec.task, spec.classes, mode, **settings)


def _counters(learner: Any, n: int) -> float:
    seen, metric_sum, _ = learner.totals()
    if seen != n:
        raise RuntimeError(f"the learner scored {seen} of {n} samples (it rejected some)")
    return metric_sum / seen


def _extra(learner: Any, settings: dict[str, Any]) -> dict[str, Any]:
    st = learner.state()
    return {"version": _version("tweenstream"), "settings": dict(settings),
            "params": learner.network.param_count, "explosions": st["explosions"],
            "rollbacks": st["rollbacks"], "switched_at": st["switched_at"]}


def tweenstream_one(mode: str, stream: Stream, settings: dict[str, Any] | None = None) -> Record:
    """A fresh Learner over ``stream`` through ``predict_one`` then ``learn_one`` per sample."""
    settings = dict(settings or {})
    spec = stream.spec
    learner = _learner(stream, mode, settings)
    adapt = tsm.Adapter(stream.keys, spec.task, spec.classes)
    predict, learn = learner.predict_one, learner.learn_one
    classify = spec.task == "classification"
    total = 0.0
    start = time.perf_counter()
    try:
        for x, y in stream.samples:
            xa, ya = adapt(x, y)
            p = predict(xa)
            total += (p == ya) if classify else abs(p - ya)
            learn(xa, ya)
    except (FloatingPointError, ValueError) as exc:  # a lost run: non-finite output
        return _failed(stream, mode, "tweenstream", "learn_one", exc, settings=settings)
    seconds = time.perf_counter() - start
    return _record(stream, mode, "tweenstream", "learn_one", float(total) / len(stream), seconds,
                   counters_value=_counters(learner, len(stream)), **_extra(learner, settings))


def tweenstream_many(mode: str, stream: Stream,
                     settings: dict[str, Any] | None = None) -> Record:
    """A fresh Learner over ``stream`` in one ``learn_many`` call, scored by its counters."""
    settings = dict(settings or {})
    spec = stream.spec
    learner = _learner(stream, mode, settings)
    X, Y = tsm.Adapter(stream.keys, spec.task, spec.classes).matrix(stream.samples)
    start = time.perf_counter()
    try:
        learner.learn_many(X, Y)
    except (FloatingPointError, ValueError) as exc:
        return _failed(stream, mode, "tweenstream", "learn_many", exc, settings=settings)
    seconds = time.perf_counter() - start
    return _record(stream, mode, "tweenstream", "learn_many", _counters(learner, len(stream)),
                   seconds, **_extra(learner, settings))


def run(model: str, way: str, stream: Stream, settings: dict[str, Any] | None = None) -> Record:
    """A River model (``way`` must be "learn_one") or a tweenstream mode fed one way."""
    if model in RIVER_MODELS:
        if way != "learn_one" or settings:
            raise ValueError(f"River models run one sample at a time with their defaults; "
                             f"found way={way!r}, settings={settings!r}")
        return river(model, stream)
    if model not in tsm.MODES:
        raise ValueError(f"unknown model {model!r}: one of {[*RIVER_MODELS, *tsm.MODES]}")
    if way == "learn_one":
        return tweenstream_one(model, stream, settings)
    if way == "learn_many":
        return tweenstream_many(model, stream, settings)
    raise ValueError(f"way must be 'learn_one' or 'learn_many', found {way!r}")
