"""The evaluation suite (bench/accuracy) on a tiny budget, so its scripts cannot rot.

Accuracy levels are not asserted (a few hundred samples and one seed decide nothing); the
tests check that every suite runs, writes its table and raw results, that the numbers are in
range, and that the report and plots are made from them.
"""

from __future__ import annotations

import doctest
import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is not installed; it runs from the checkout
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    """Every suite once, with --quick, into one folder; then the report into a copy of the
    real document."""
    cli = importlib.import_module("bench.accuracy.__main__")
    out = tmp_path_factory.mktemp("eval")
    assert cli.main(["all", "--quick", "--out", str(out)]) == 0
    doc = out / "benchmarks.md"
    doc.write_text((ROOT / "docs" / "benchmarks.md").read_text())
    assert cli.main(["report", "--out", str(out), "--doc", str(doc), "--img",
                     str(out / "img")]) == 0
    return out, doc


def _table(md: str) -> list[list[str]]:
    lines = [line for line in md.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_every_suite_writes_markdown_and_results(evaluation):
    out, _ = evaluation
    for name in ("tables", "toys", "switch", "traces", "hybrid"):
        md = (out / f"{name}.md").read_text()
        assert "Measured" in md or "Wall time" in md, name
        assert len(_table(md)) >= 3, name
    from bench.accuracy.common import MODES
    from bench.accuracy.tables import KINDS

    raw = json.loads((out / "tables.json").read_text())
    kinds = {r["network"] for r in raw["results"] if r["suite"] == "kinds"}
    assert kinds == {f"{k} ×{n}" for k in KINDS for n in (1, 5)}
    for r in raw["results"]:
        assert r["mode"] in MODES
        assert 0.0 <= r["heldout"] <= 1.0 and 0.0 <= r["prequential"] <= 1.0, r
        assert r["samples_per_s"] > 0 and r["explosions"] >= 0
    quadrant = [r for r in raw["results"] if r["suite"] == "quadrant"]
    assert {r["mode"] for r in quadrant} == set(MODES) and all(r["curve"] for r in quadrant)


def test_tables_have_every_mode_column(evaluation):
    out, _ = evaluation
    from bench.accuracy.common import MODES

    head = _table((out / "tables.md").read_text())[0]
    assert head[:3] == ["network", "task", "majority"] and head[3:7] == list(MODES)


def test_switch_curve_covers_three_phases(evaluation):
    out, _ = evaluation
    raw = json.loads((out / "switch.json").read_text())
    meta = raw["meta"]
    for r in raw["results"]:
        assert len(r["curve"]) == 3 * meta["phase"] // meta["window"]


def test_traces_have_every_layer(evaluation):
    out, _ = evaluation
    for t in json.loads((out / "traces.json").read_text()):
        n = len(t["kinds"])
        assert n == 42 and all(len(row) == n for row in t["gap"] + t["link_budget"])
        assert len(t["curve"]) == len(t["gap"])


def test_report_fills_every_section_and_keeps_the_rest(evaluation):
    out, doc = evaluation
    text = doc.read_text()
    original = (ROOT / "docs" / "benchmarks.md").read_text()
    for name in ("report", "tables", "toys", "switch", "traces", "hybrid"):
        assert text.count(f"<!-- {name}:begin -->") == 1, name
    assert "<!-- engine:begin -->" in text and "## Daemon" in text
    assert (out / "toys.md").read_text().strip() in text
    assert original.splitlines()[0] == text.splitlines()[0]


def test_plots_are_pngs(evaluation):
    out, doc = evaluation
    pngs = sorted(p.name for p in (out / "img").glob("*.png"))
    assert pngs == ["prequential.png", "task_switch.png", "traces.png"]
    for p in (out / "img").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![switch](img/task_switch.png)" in doc.read_text()


def test_bad_flags_are_refused(capsys):
    cli = importlib.import_module("bench.accuracy.__main__")
    with pytest.raises(SystemExit):
        cli.main(["toys", "--seeds", "0"])
    assert "--seeds must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["tables", "--lr", "-1"])
    assert "--lr must be in (0, 10), found -1.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["nonsense"])


@pytest.mark.parametrize("module", ["common", "tables", "toys", "switch", "publish"])
def test_docstring_examples(module, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    mod = importlib.import_module(f"bench.accuracy.{module}")
    failed, _ = doctest.testmod(mod)
    assert failed == 0
