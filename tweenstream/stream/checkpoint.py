"""Checkpoints: atomic, numbered model files with the daemon's stream state, newest first.

Each checkpoint is a model file (``runtime/persist.py``: written to a temporary file, fsynced,
renamed). Its ``extra`` holds the daemon's counters (small JSON) and its ``extra_arrays`` the
stream table and the inputs waiting for labels, as fixed-width arrays, so the manifest stays
small however many streams there are. A checkpoint larger than the store's byte budget is
refused before anything is written (the previous one stays). ``latest`` returns the newest
checkpoint that loads and passes the caller's check; a corrupt one is reported and skipped.
Only the newest ``keep`` files are kept, and temporary files left by a killed write are
removed when the store opens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tweenstream.runtime.learner import Learner
from tweenstream.runtime.persist import ModelFileError, load_parts, save
from tweenstream.stream.outputs import remove_temporaries

_NAME = re.compile(r"^ckpt-(\d{12})\.tsm$")
DEFAULT_BUDGET = 1 << 30


class Checkpoint(NamedTuple):
    learner: Learner | None
    extra: dict[str, Any]
    arrays: dict[str, np.ndarray]
    problems: list[str]


class CheckpointTooLarge(ValueError):
    """A checkpoint over the store's byte budget; nothing was written."""


class CheckpointStore:
    """A folder of checkpoints ``ckpt-<number>.tsm``.

    Examples
    --------
    >>> import tempfile
    >>> from tweenstream import Dense, Network
    >>> store = CheckpointStore(tempfile.mkdtemp(), keep=2)
    >>> for _ in range(3):
    ...     _ = store.write(Learner(Network(2, [Dense(2)])), {"note": 1})
    >>> [p.name for p in store.paths()]
    ['ckpt-000000000003.tsm', 'ckpt-000000000002.tsm']
    >>> found = store.latest()
    >>> found.extra, found.problems
    ({'note': 1}, [])
    """

    def __init__(self, folder: str | Path, keep: int = 3, budget: int = DEFAULT_BUDGET) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, found {keep}")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.budget = budget
        self.removed_temporaries = remove_temporaries(self.folder, "ckpt-*.tsm")

    def paths(self) -> list[Path]:
        """Checkpoint files, newest first."""
        found = [p for p in self.folder.iterdir() if _NAME.match(p.name)]
        return sorted(found, key=lambda p: p.name, reverse=True)

    def write(self, learner: Learner, extra: dict[str, Any],
              arrays: dict[str, np.ndarray] | None = None) -> Path:
        """Write a new checkpoint atomically and prune old ones; returns its path.

        Raises ``CheckpointTooLarge`` (and writes nothing) when the learner and ``arrays``
        together exceed the byte budget.
        """
        size = sum(a.nbytes for a in learner._saved_arrays().values()) \
            + sum(a.nbytes for a in (arrays or {}).values())
        if size > self.budget:
            raise CheckpointTooLarge(f"checkpoint would hold {size} bytes of arrays, over the "
                                     f"budget of {self.budget}; nothing was written")
        paths = self.paths()
        newest = _NAME.match(paths[0].name) if paths else None
        number = int(newest.group(1)) + 1 if newest else 1
        path = self.folder / f"ckpt-{number:012d}.tsm"
        save(learner, path, extra, arrays)
        for old in self.paths()[self.keep:]:
            old.unlink(missing_ok=True)
        return path

    def latest(self, check: Callable[[Checkpoint], None] | None = None) -> Checkpoint:
        """The newest checkpoint that loads and passes ``check`` (which raises ``ValueError``
        to refuse one), with the problems of the newer ones."""
        problems: list[str] = []
        for path in self.paths():
            try:
                found = Checkpoint(*load_parts(path), problems)
                if check is not None:
                    check(found)
            except ModelFileError as err:
                problems.append(str(err))
                continue
            except ValueError as err:
                problems.append(f"{path}: invalid daemon state: {err}")
                continue
            return found
        return Checkpoint(None, {}, {}, problems)
