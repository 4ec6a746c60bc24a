"""River's models of the suite, each with River's default settings (no per-stream tuning).

Each entry of ``RIVER_MODELS`` builds a fresh model for a task and a number of classes. River is
imported only when a model is built, so listing the models needs no River.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SEED = 42  # seed of the models that draw random numbers (HAT, ARF)


@dataclass(frozen=True)
class RiverModel:
    """One River model of the suite: its name, what it is, and how to build it."""

    name: str
    about: str
    make: Callable[[str, int], Any]  # (task, n_classes) -> a fresh River model


def _linear(task: str, n_classes: int) -> Any:
    from river import linear_model, multiclass, preprocessing

    if task == "regression":
        return preprocessing.StandardScaler() | linear_model.LinearRegression()
    if n_classes > 2:  # as River's OneVsRestClassifier docstring composes it
        return preprocessing.StandardScaler() | multiclass.OneVsRestClassifier(
            linear_model.LogisticRegression())
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def _hat(task: str, n_classes: int) -> Any:
    from river import tree

    if task == "regression":
        return tree.HoeffdingAdaptiveTreeRegressor(seed=SEED)
    return tree.HoeffdingAdaptiveTreeClassifier(seed=SEED)


def _arf(task: str, n_classes: int) -> Any:
    from river import forest

    if task == "regression":
        return forest.ARFRegressor(seed=SEED)
    return forest.ARFClassifier(seed=SEED)


RIVER_MODELS: dict[str, RiverModel] = {m.name: m for m in (
    RiverModel("river-linear",
               "`preprocessing.StandardScaler() | linear_model.LogisticRegression()` "
               "(binary), `StandardScaler() | multiclass.OneVsRestClassifier("
               "LogisticRegression())` (more than two classes), `StandardScaler() | "
               "linear_model.LinearRegression()` (regression)", _linear),
    RiverModel("river-hat",
               f"`tree.HoeffdingAdaptiveTreeClassifier(seed={SEED})` / "
               f"`HoeffdingAdaptiveTreeRegressor(seed={SEED})`", _hat),
    RiverModel("river-arf",
               f"`forest.ARFClassifier(seed={SEED})` / `forest.ARFRegressor(seed={SEED})` "
               "(10 trees)", _arf),
)}
