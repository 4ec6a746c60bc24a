"""bench/streams on a tiny budget (200 samples, two streams), so the suite cannot rot.

Needs River (``pip install -e '.[river]'``; ``make test`` installs it). Accuracy levels and
speeds are not asserted: the tests check that every requested row and column is produced,
that the scores are in range, and that the JSON holds the same runs as the table.
"""

from __future__ import annotations

import doctest
import importlib
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is not installed; it runs from the checkout
    sys.path.insert(0, str(ROOT))

STREAMS = ["phishing", "chick-weights"]
MODELS = ["river-linear", "tween", "backprop"]
LIMIT = 200


def _rows(md: str) -> list[list[str]]:
    lines = [line for line in md.split("\n\n")[0].splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """One tiny run of the suite; returns (printed Markdown file, raw JSON)."""
    cli = importlib.import_module("bench.streams.__main__")
    out = tmp_path_factory.mktemp("streams")
    md, js = out / "streams.md", out / "streams.json"
    argv = ["--streams", *STREAMS, "--models", *MODELS, "--limit", str(LIMIT),
            "--json", str(js), "--markdown", str(md)]
    assert cli.main(argv) == 0
    return md, json.loads(js.read_text())


def test_table_has_every_row_and_column(suite):
    md, _ = suite
    rows = _rows(md.read_text())
    head, body = rows[0], rows[2:]
    assert head[:3] == ["stream", "metric, samples", "trivial"]
    assert head[3:-3] == ["river-linear", "tween (learn_one)", "tween (learn_many)",
                          "backprop (learn_one)", "backprop (learn_many)"]
    assert head[-3:-1] == ["best River", "best tweenstream"]
    assert [r[0] for r in body] == STREAMS
    for r in body:
        assert r[1].endswith(f", {LIMIT}")
        assert 0.0 <= float(r[2]) and all(" / " in cell for cell in r[3:-3]), r  # none failed
        assert r[-3].startswith("river-linear ")
        assert r[-2].split()[0] in ("tween", "backprop")
        assert math.isfinite(float(r[-1]))
    assert "Notes:" in md.read_text() and "agree on every stream" in md.read_text()


def test_json_records_are_sane(suite):
    _, raw = suite
    assert raw["meta"]["limit"] == LIMIT and raw["meta"]["seconds"] > 0
    records = raw["records"]
    got = {(r["stream"], r["model"], r["way"]) for r in records}
    want = {(s, "river-linear", "learn_one") for s in STREAMS} | {
        ("phishing", "majority", "learn_one"), ("chick-weights", "mean", "learn_one")} | {
        (s, m, w) for s in STREAMS for m in ("tween", "backprop")
        for w in ("learn_one", "learn_many")}
    assert got == want and len(records) == len(want)
    for r in records:
        assert not r.get("failed"), r
        assert r["samples"] == LIMIT and r["us_per_sample"] > 0
        if r["stream"] == "phishing":
            assert r["metric"] == "accuracy" and 0.0 <= r["value"] <= 1.0
        else:
            assert r["metric"] == "mae" and math.isfinite(r["value"]) and r["value"] >= 0
        if r["family"] == "tweenstream" and r["way"] == "learn_one":  # same prediction scored
            assert r["counters_value"] == pytest.approx(r["value"], rel=1e-4)


def test_sweep_reports_refused_settings(suite, tmp_path):
    sweep = importlib.import_module("bench.streams.sweep")
    _, raw = suite
    baseline = tmp_path / "streams.json"
    baseline.write_text(json.dumps(raw))
    grid = [{"mode": "backprop", "learning_rate": 0.003},
            {"mode": "tween", "no_such_setting": 1},
            {"mode": "tween", "activation": "relu"}]
    md, js = tmp_path / "sweep.md", tmp_path / "sweep.json"
    assert sweep.main(["--streams", *STREAMS, "--limit", str(LIMIT), "--baseline",
                       str(baseline), "--json", str(js), "--markdown", str(md)], grid=grid) == 0
    text = md.read_text()
    rows = _rows(text)[2:]
    assert sorted(r[1] for r in rows) == ["mode=backprop, learning_rate=0.003",
                                          "mode=tween, activation=relu"]
    assert "Not available: mode=tween, no_such_setting=1 (TypeError" in text
    results = json.loads(js.read_text())["results"]
    assert [r["available"] for r in results] == [True, False, True]
    for r in results[::2]:
        assert set(r["gaps"]) == set(STREAMS)
        assert r["worst_gap"] == max(r["gaps"].values())


def test_sweep_baseline_must_match_lengths(suite, tmp_path):
    sweep = importlib.import_module("bench.streams.sweep")
    catalog = importlib.import_module("bench.streams.catalog")
    _, raw = suite
    baseline = tmp_path / "streams.json"
    baseline.write_text(json.dumps(raw))
    streams = {"phishing": catalog.load("phishing", LIMIT + 1)}
    with pytest.raises(ValueError, match="same --limit"):
        sweep.baseline(streams, ["river-linear"], baseline)


def test_catalog_streams_are_local_and_labelled():
    catalog = importlib.import_module("bench.streams.catalog")
    for name, spec in catalog.SPECS.items():
        stream = catalog.load(name, 50)
        assert len(stream) == 50 and stream.n_features > 0
        assert (spec.task == "classification") == bool(spec.classes)
    with pytest.raises(ValueError, match="limit must be >= 1"):
        catalog.load("phishing", 0)


def test_cli_options():
    cli = importlib.import_module("bench.streams.__main__")
    args = cli.parse(["--quick", "--heuristic", "--models", "tween"])
    assert args.limit == cli.QUICK_LIMIT and args.models == ["tween", "tween-heuristic"]
    assert "tween-heuristic" not in cli.parse([]).models
    with pytest.raises(SystemExit):
        cli.parse(["--limit", "0"])


@pytest.mark.parametrize("module", ["catalog", "tweenstream_models", "report", "sweep"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"bench.streams.{module}")
    failed, _ = doctest.testmod(mod)
    assert failed == 0
