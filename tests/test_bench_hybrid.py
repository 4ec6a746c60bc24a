"""bench/hybrid.py on a tiny budget: the table has one row per kind, every arm's column, and
accuracies in [0, 1]. Accuracy levels are not asserted (the budget is far too small)."""

from __future__ import annotations

import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_tiny_run_table(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    hybrid = importlib.import_module("bench.hybrid")
    budget = hybrid.Budget(train=300, test=100, refine_epochs=1)
    rows = hybrid.run(["dense", "rnn"], seeds=1, budget=budget)
    lines = hybrid.table(rows).splitlines()
    assert _cells(lines[0]) == ["network", "task", "majority", *hybrid.ARMS]
    assert len(lines) == 2 + 2
    for line, kind in zip(lines[2:], ["dense", "rnn"], strict=True):
        cells = _cells(line)
        assert len(cells) == 3 + len(hybrid.ARMS)
        assert cells[0] == hybrid.TASKS[kind].network
    for row in rows:
        assert len(row.majority) == 1 and 0.0 <= row.majority[0] <= 1.0
        for arm in hybrid.ARMS:
            (outcome,) = row.arms[arm]
            assert 0.0 <= outcome.accuracy <= 1.0, (row.key, arm, outcome)
    assert "Notes:" in hybrid.render(rows, 1, budget, 0.0)
