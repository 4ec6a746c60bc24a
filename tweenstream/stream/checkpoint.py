"""Checkpoints: atomic, numbered model files with the daemon's stream state, newest first.

Each checkpoint is a model file (``runtime/persist.py``: written to a temporary file, fsynced,
renamed) whose ``extra`` holds the daemon's counters and per-stream state, including the last
applied ``seq`` of every stream. ``latest`` returns the newest checkpoint that loads; a corrupt
one is reported and skipped. Only the newest ``keep`` files are kept.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tweenstream.runtime.learner import Learner
from tweenstream.runtime.persist import ModelFileError, load_with_extra, save

_NAME = re.compile(r"^ckpt-(\d{12})\.tsm$")


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
    >>> learner, extra, problems = store.latest()
    >>> extra, problems
    ({'note': 1}, [])
    """

    def __init__(self, folder: str | Path, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, found {keep}")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep = keep

    def paths(self) -> list[Path]:
        """Checkpoint files, newest first."""
        found = [p for p in self.folder.iterdir() if _NAME.match(p.name)]
        return sorted(found, key=lambda p: p.name, reverse=True)

    def write(self, learner: Learner, extra: dict[str, Any]) -> Path:
        """Write a new checkpoint atomically and prune old ones; returns its path."""
        paths = self.paths()
        newest = _NAME.match(paths[0].name) if paths else None
        number = int(newest.group(1)) + 1 if newest else 1
        path = self.folder / f"ckpt-{number:012d}.tsm"
        save(learner, path, extra)
        for old in self.paths()[self.keep:]:
            old.unlink(missing_ok=True)
        return path

    def latest(self) -> tuple[Learner | None, dict[str, Any], list[str]]:
        """The newest checkpoint that loads: (learner, extra, problems with newer ones)."""
        problems = []
        for path in self.paths():
            try:
                learner, extra = load_with_extra(path)
            except ModelFileError as err:
                problems.append(str(err))
                continue
            return learner, extra, problems
        return None, {}, problems
