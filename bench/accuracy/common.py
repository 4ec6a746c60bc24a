"""What every accuracy suite shares: the arms (learning modes), one run of an arm over a
stream, and the Markdown helpers.

An arm learns a training stream online, test-then-train, at batch size 1, then is scored on a
clean held-out set. Every arm of a suite sees the same samples in the same order.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import cpu_model
from tweenstream import Learner, Network

MODES = ("backprop", "tween", "tween-heuristic", "hybrid")
OUT = Path("build/eval")
# Every arm runs at the library's defaults (Adam for backprop) unless ``--lr`` asks for plain
# SGD at one rate for every network, as the suites used before the defaults were reworked.
DEFAULTS: dict[str, Any] = {}
# What every learner of the current run gets: DEFAULTS, changed by ``configure`` (--lr,
# --tween-rate). Reset at every configure call, so one run's flags never leak into the next.
SETTINGS: dict[str, Any] = dict(DEFAULTS)


def configure(learning_rate: float | None = None, tween_rate: float | None = None) -> bool:
    """Set the shared learning settings from the defaults; True if they differ from them.

    Examples
    --------
    >>> configure(tween_rate=0.1), SETTINGS["tween_rate"], configure(), "tween_rate" in SETTINGS
    (True, 0.1, False, False)
    """
    SETTINGS.clear()
    SETTINGS.update(DEFAULTS)
    if learning_rate is not None:
        SETTINGS.update(optimizer="sgd", learning_rate=learning_rate, momentum=0.0)
    if tween_rate is not None:
        SETTINGS["tween_rate"] = tween_rate
    return SETTINGS != DEFAULTS


@dataclass
class Result:
    """One arm on one seed: held-out and prequential accuracy, speed and safety counters."""

    suite: str
    network: str
    mode: str
    seed: int
    heldout: float
    prequential: float
    samples_per_s: float
    explosions: int
    rollbacks: int
    constant: bool
    switched_at: int | None = None
    curve: list[float] | None = None
    extra: dict[str, float] = field(default_factory=dict)


def settings_note() -> str:
    """The learning settings every arm of a suite shares, as one sentence."""
    tween = ("library defaults, except tween_rate " + str(SETTINGS["tween_rate"])
             if "tween_rate" in SETTINGS else "library defaults")
    backprop = (f"SGD learning rate {SETTINGS['learning_rate']}, no momentum"
                if "learning_rate" in SETTINGS else "library defaults (Adam)")
    return (f"backprop and hybrid's backprop phase: {backprop}. "
            f"tween, tween-heuristic and hybrid's tween phase: {tween}; hybrid switches to "
            "backprop on its trigger.")


def learner(net: Network, mode: str, seed: int, **settings: Any) -> Learner:
    """A learner of ``mode`` with the library's tween defaults and the suites' backprop rate."""
    return Learner(net, mode=mode, seed=seed, **{**SETTINGS, **settings})


def heldout(model: Learner, X: np.ndarray, y: np.ndarray) -> tuple[float, bool]:
    """Held-out accuracy and whether the model predicts a single class. A model whose output
    is not finite (a lost run) scores NaN, which every table counts and reports apart."""
    try:
        pred = model.predict_many(X)
    except FloatingPointError:
        return float("nan"), False
    return float((pred == y).mean()), bool(len(np.unique(pred)) == 1)


def learn_stream(model: Learner, X: np.ndarray, y: np.ndarray, window: int = 0
                 ) -> tuple[float, float, list[float]]:
    """Learn ``X, y`` test-then-train; return (prequential accuracy, samples/s, curve).

    ``curve`` holds the prequential accuracy of each ``window`` samples (empty if 0). A sample
    the learner rejects (a non-finite output) counts as an error. Compile time is kept out of
    samples/s by ``warm()``.

    Examples
    --------
    >>> from tweenstream import Dense
    >>> X = np.random.default_rng(0).uniform(-1, 1, (400, 2)).astype(np.float32)
    >>> m = learner(Network(2, [Dense(2)]), "backprop", 0)
    >>> acc, rate, curve = learn_stream(m, X, (X[:, 0] > 0).astype(np.int64), window=200)
    >>> len(curve), 0.0 <= acc <= 1.0
    (2, True)
    """
    model.warm()
    s0 = model.totals()[1]
    step = window or len(X)
    curve = []
    seconds = 0.0
    for start in range(0, len(X), step):
        before = model.totals()[1]
        t = time.perf_counter()
        model.learn_many(X[start:start + step], y[start:start + step])
        seconds += time.perf_counter() - t
        if window:
            curve.append((model.totals()[1] - before) / len(X[start:start + step]))
    return (model.totals()[1] - s0) / max(len(X), 1), len(X) / max(seconds, 1e-9), curve


def run_arm(suite: str, name: str, net: Network, mode: str, seed: int, train: tuple,
            test: tuple, window: int = 0, **settings: Any) -> Result:
    """One arm: a fresh learner learns ``train`` online and is scored on ``test``."""
    model = learner(net, mode, seed, **settings)
    preq, rate, curve = learn_stream(model, *train, window=window)
    acc, constant = heldout(model, *test)
    st = model.state()
    return Result(suite, name, mode, seed, acc, preq, rate, st["explosions"], st["rollbacks"],
                  constant, st["switched_at"], curve or None)


def majority(y: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class of ``y``."""
    return float(np.bincount(y).max() / len(y))


def mean_std(values: Iterable[float], digits: int = 3) -> str:
    """``mean ± std`` (population std); non-finite values are counted apart.

    Examples
    --------
    >>> mean_std([0.5, 0.7])
    '0.600 ± 0.100'
    """
    v = np.asarray(list(values), dtype=np.float64)
    ok = v[np.isfinite(v)]
    if len(ok) == 0:
        return "n/a"
    text = f"{ok.mean():.{digits}f} ± {ok.std():.{digits}f}"
    return text if len(ok) == len(v) else f"{text} ({len(v) - len(ok)} non-finite)"


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table from a header and rows of cells."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """CPU model, core count and Python version, for the provenance line of every table."""
    return f"{cpu_model()} ({os.cpu_count()} cores), Python {platform.python_version()}"


def provenance(command: str, seconds: float) -> str:
    """One line: when, where and how a table was made."""
    return (f"Measured {time.strftime('%Y-%m-%d')} on {machine()}. Command: `{command}` "
            f"({seconds:.0f} s wall time).")


def write(name: str, markdown: str, results: Sequence[Result], out: Path = OUT,
          **meta: Any) -> Path:
    """Write ``<name>.md`` and ``<name>.json`` (``{"meta": meta, "results": [...]}``)."""
    out.mkdir(parents=True, exist_ok=True)
    raw = {"meta": meta, "results": [asdict(r) for r in results]}
    (out / f"{name}.json").write_text(json.dumps(raw))
    path = out / f"{name}.md"
    path.write_text(markdown)
    return path


def summary(results: Sequence[Result], keys: Sequence[str] = ("network",)
            ) -> dict[tuple, dict[str, list[Result]]]:
    """Results grouped by ``keys`` (in first-seen order), then by mode."""
    groups: dict[tuple, dict[str, list[Result]]] = {}
    for r in results:
        groups.setdefault(tuple(getattr(r, k) for k in keys), {}).setdefault(r.mode, []
                                                                             ).append(r)
    return groups
