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
        assert "Measured 20" in md and "Command: `python -m bench." in md, name
        assert len(_table(md)) >= 3, name
    from bench.accuracy.common import MODES
    from bench.accuracy.tables import KINDS

    raw = json.loads((out / "tables.json").read_text())
    kinds = {r["network"] for r in raw["results"] if r["suite"] == "kinds"}
    assert kinds == {f"{k} ×{n}" for k, spec in KINDS.items() for n in spec.bodies}
    assert len(kinds) == 2 * len(KINDS) - 1  # Embedding can only be a first layer: ×1 only
    for r in raw["results"]:
        assert r["mode"] in MODES
        assert 0.0 <= r["heldout"] <= 1.0 and 0.0 <= r["prequential"] <= 1.0, r
        assert r["samples_per_s"] > 0 and r["explosions"] >= 0
    quadrant = [r for r in raw["results"] if r["suite"] == "quadrant"]
    assert {r["mode"] for r in quadrant} == set(MODES) and all(r["curve"] for r in quadrant)


def test_table_cells_come_from_the_results(evaluation):
    out, _ = evaluation
    from bench.accuracy.common import MODES, mean_std

    table = _table((out / "tables.md").read_text())
    head, first = table[0], table[2]
    assert head[:3] == ["network", "task", "majority"] and head[3:7] == list(MODES)
    raw = json.loads((out / "tables.json").read_text())["results"]
    for column, mode in enumerate(MODES, start=3):
        mine = [r["heldout"] for r in raw if r["network"] == first[0] and r["mode"] == mode]
        assert first[column] == mean_std(mine)


def test_verdict_and_rows_on_known_results():
    from bench.accuracy.common import Result
    from bench.accuracy.tables import rows, verdict

    def result(mode, acc, seed, explosions=0):
        return Result("kinds", "net", mode, seed, acc, acc, 100.0, explosions, explosions,
                      False)

    res = [result("backprop", 0.9, 0), result("backprop", 0.8, 1),
           result("tween", 0.5, 0, 3), result("tween", float("nan"), 1)]
    assert verdict(res) == ["net: against backprop, tween −0.350 (1 runs lost, not in the mean)"]
    (row,) = rows(res, {"net": [0.5, 0.5]}, {"net": "task"})
    assert row[:5] == ["net", "task", "0.500 ± 0.000", "0.850 ± 0.050",
                       "0.500 ± 0.000 (1 non-finite)"]
    assert row[-2] == "0 (0) / 3 (1)"


def test_every_arm_sees_the_same_stream():
    """Hybrid tweens until its trigger fires, so its curve equals tween's until then."""
    import numpy as np

    from bench.accuracy.common import run_arm
    from bench.accuracy.tables import KINDS, quadrant_data

    X, y, _ = quadrant_data(np.random.default_rng(0), 3000)
    test = quadrant_data(np.random.default_rng(1), 200)
    net = KINDS["Dense"].build(1)
    tween = run_arm("t", "n", net, "tween", 0, (X, y), test[::2], window=100)
    hybrid = run_arm("t", "n", net, "hybrid", 0, (X, y), test[::2], window=100,
                     plateau_window=100, plateau_patience=1)
    assert hybrid.switched_at is not None and 0 < hybrid.switched_at < 3000
    k = hybrid.switched_at // 100
    assert hybrid.curve[:k] == tween.curve[:k] and hybrid.curve != tween.curve


def test_toy_baselines_use_the_held_out_draws():
    import numpy as np

    from bench.accuracy import toys
    from bench.accuracy.common import majority

    b = toys.Budget(train=50, test=60, seeds=2)
    s = toys.TOY_SETS.index("circles")
    expected = np.mean([majority(toys.toy_set("circles", 60, noise=b.noise,
                                              seed=toys._test_seed(s, k))[1]) for k in (0, 1)])
    assert toys.majorities(["circles"], b) == {"circles": expected}
    res = toys.run(["circles"], b, activations=("tanh",), depths=(1, 3), modes=("tween",))
    assert sorted({r.network for r in res}) == ["circles|tanh|1|plain", "circles|tanh|3|plain",
                                                "circles|tanh|3|res"]


def test_switch_curve_covers_three_phases(evaluation):
    out, _ = evaluation
    raw = json.loads((out / "switch.json").read_text())
    meta = raw["meta"]
    for r in raw["results"]:
        assert len(r["curve"]) == 3 * meta["phase"] // meta["window"]
        assert set(r["extra"]) == {"A_after_A", "A_after_B"}  # retention, held out
    from bench.accuracy import switch

    with pytest.raises(ValueError, match="multiple of window"):
        switch.run(switch.Budget(phase=1000, window=300, seeds=1))


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
    assert "## Daemon" in original and text.count("## Toy sets") == 1


def test_report_is_idempotent_and_appends_missing_sections(evaluation, tmp_path):
    out, _ = evaluation
    cli = importlib.import_module("bench.accuracy.__main__")
    doc = tmp_path / "doc.md"
    doc.write_text("# benchmarks\n\nSome prose.\n")
    argv = ["report", "--out", str(out), "--doc", str(doc), "--img", str(tmp_path / "img")]
    assert cli.main(argv) == 0
    once = doc.read_text()
    assert cli.main(argv) == 0
    assert doc.read_text() == once
    assert once.startswith("# benchmarks\n\n<!-- report:begin -->") and "Some prose." in once
    for heading in ("## Accuracy", "## Toy sets", "## Task switching", "## Depth", "## Hybrid"):
        assert once.count(heading) == 1, heading


def test_plots_are_pngs(evaluation):
    out, doc = evaluation
    pngs = sorted(p.name for p in (out / "img").glob("*.png"))
    assert pngs == ["prequential.png", "task_switch.png", "traces.png"]
    for p in (out / "img").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![switch](img/task_switch.png)" in doc.read_text()


def test_flags_reset_and_custom_runs_stay_out_of_the_report(capsys):
    cli = importlib.import_module("bench.accuracy.__main__")
    from bench.accuracy import common

    args = cli.parse(["toys", "--lr", "0.005", "--tween-rate", "0.2"])
    assert args.out == common.OUT / "custom" and common.SETTINGS == {
        "optimizer": "sgd", "learning_rate": 0.005, "momentum": 0.0, "tween_rate": 0.2}
    assert "SGD learning rate 0.005" in common.settings_note()
    args = cli.parse(["toys"])
    assert args.out == common.OUT and common.SETTINGS == common.DEFAULTS == {}
    assert "library defaults (Adam)" in common.settings_note()
    assert cli.parse(["tables", "--kinds", "Dense"]).out == common.OUT / "custom"
    assert cli.parse(["report"]).out == common.OUT
    cli.parse(["toys"])


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
