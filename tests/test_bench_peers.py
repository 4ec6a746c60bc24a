"""bench/peers on a tiny budget, with the peers that need no extra install (torch, River and
deep-river are never needed here). Accuracy levels and speeds are not asserted."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from helpers import central_difference

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def peers(monkeypatch) -> dict[str, ModuleType]:
    """The bench.peers modules, importable from the repository root."""
    monkeypatch.syspath_prepend(str(ROOT))
    names = ("adapters", "harness", "numpy_mlp", "one", "report", "streams")
    return {n: importlib.import_module(f"bench.peers.{n}") for n in names}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_tiny_run_in_subprocesses(peers, tmp_path):
    harness, report, adapters = peers["harness"], peers["report"], peers["adapters"]
    shapes, always = ["toy", "A"], list(adapters.ALWAYS)
    todo = harness.jobs(always, shapes, [0], {"toy": 200, "A": 300}, warmup=20)
    records = harness.collect(todo)
    assert len(records) == len(always) * len(shapes)
    for r in records:
        assert "us_per_sample" in r, r
        assert 0.0 <= r["prequential_accuracy"] <= 1.0
        assert r["us_per_sample"] > 0 and r["peak_rss_mb"] > 0 and r["params"] > 0
        assert r["samples"] == (200 if r["shape"] == "toy" else 300)
    settings = report.Settings([0], {"toy": 200, "A": 300}, 20, "test")
    text = report.render(records, always, shapes, settings)
    lines = text.split("\n\n")[0].splitlines()
    assert _cells(lines[0]) == list(report.COLUMNS)
    rows = [_cells(line) for line in lines[2:]]
    assert [(c[0], c[2].split()[0]) for c in rows] == [(p, s) for s in shapes for p in always]
    assert rows[0][3] == "354" and rows[-1][3] == "1,476"
    assert "Notes:" in text and "not installed" not in text
    md, js = report.write(records, text, tmp_path)
    assert md.read_text() == text
    raw = json.loads(js.read_text())
    assert [list(r)[:len(report.RAW_KEYS)] for r in raw] == [list(report.RAW_KEYS)] * len(raw)
    plots = importlib.import_module("bench.accuracy.plots")  # µs/sample against size
    png = plots.cost(tmp_path, tmp_path / "img")
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"


def test_missing_peer_listed_not_installed(peers, monkeypatch):
    adapters, harness, one, report = (peers[n] for n in ("adapters", "harness", "one", "report"))

    class Absent(adapters.NumpySGD):
        name = "absent-peer"
        requires = ("tweenstream_no_such_module",)
        about = "a peer whose library is missing"

    monkeypatch.setitem(adapters.PEERS, Absent.name, Absent)
    calls = []

    def runner(job):
        calls.append(job)
        return one.run(job.peer, job.shape, job.samples, job.seed, job.warmup)

    names = ["numpy-sgd", Absent.name]
    records = harness.collect(harness.jobs(names, ["toy", "A"], [0, 1], {"toy": 50, "A": 50},
                                           warmup=5), runner=runner)
    assert sum(job.peer == Absent.name for job in calls) == 1  # not retried
    missing = [r for r in records if r.get("installed") is False]
    assert len(missing) == 1 and "tweenstream_no_such_module" in missing[0]["reason"]
    text = report.render(records, names, ["toy", "A"],
                         report.Settings([0, 1], {"toy": 50, "A": 50}, 5, "test"))
    table = text.split("\n\n")[0].splitlines()
    assert _cells(table[-1])[:2] == [Absent.name, "not installed"]
    assert len(table) == 2 + 2 + 1  # numpy-sgd on two shapes, then the missing peer
    assert [r["peer"] for r in report.raw(records)] == ["numpy-sgd"] * 4


def test_numpy_gradient_matches_finite_differences(peers):
    mlp = peers["numpy_mlp"].NumpyMLP((3, 5, 4, 3), lr=0.1, seed=1, dtype=np.float64)
    rng = np.random.default_rng(0)
    for w in mlp.b:
        w[...] = rng.normal(0.0, 0.3, w.shape)
    x, y = rng.uniform(-1, 1, 3), 2
    mlp.gradients(x, y)
    analytic = [g.copy() for g in (*mlp.gW, *mlp.gb)]
    for param, grad in zip((*mlp.W, *mlp.b), analytic, strict=True):
        numeric = central_difference(lambda: mlp.gradients(x, y), param)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    before = mlp.W[0].copy()
    mlp.learn_one(x, y)
    np.testing.assert_allclose(mlp.W[0], before - 0.1 * analytic[0], rtol=1e-12)


def test_tweenstream_counters_score_before_learning(peers):
    adapters, streams = peers["adapters"], peers["streams"]
    peer = adapters.PEERS["tweenstream-backprop"]()
    peer.load()
    peer.build(streams.SHAPES["A"], 0)
    X, y = streams.SHAPES["A"].make(200, 0)
    for x, t in zip(X, y.tolist(), strict=True):
        predicted = peer.model.predict_one(x)
        correct = peer.scored()[1]
        peer.learn_one(x, t)
        assert peer.scored()[1] - correct == int(predicted == t)
    assert peer.scored()[0] == 200


def test_cli_options(peers):
    main = importlib.import_module("bench.peers.__main__")
    args = main.parse(["--peers", "numpy-sgd", "--shapes", "A", "--quick"])
    assert args.peers == ["numpy-sgd"] and args.shapes == ["A"] and args.quick
    assert args.seeds == 3 and args.samples_scale == 1.0
    with pytest.raises(SystemExit):
        main.parse(["--seeds", "0"])
