"""The tweenstream command: demo and info, with their errors."""

from __future__ import annotations

import json

import pytest

from tweenstream import load
from tweenstream.cli import main


def test_demo_learns_reports_and_saves(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--in-process", "--samples", "30000", "--report-every", "10000",
                 "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "switched tween -> backprop at sample" in text
    assert "the labelling rule switches at sample 15,000" in text
    assert text.count("samples/s") >= 3 and "model saved to" in text
    assert load(out / "model.tsm").state()["samples_seen"] == 30_000


def test_info_describes_a_saved_model(tmp_path, capsys):
    main(["demo", "--in-process", "--samples", "2000", "--no-progress", "--mode", "tween",
          "--out", str(tmp_path)])
    capsys.readouterr()
    assert main(["info", str(tmp_path / "model.tsm")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["mode"] == "tween" and info["samples_seen"] == 2000 and info["params"] == 1476


def test_info_on_a_damaged_file(tmp_path, capsys):
    bad = tmp_path / "bad.tsm"
    bad.write_bytes(b"not a model")
    assert main(["info", str(bad)]) == 2
    assert "not a readable model file" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["demo", "--samples", "0"], "expected a positive integer, found 0"),
    (["demo", "--samples", "many"], "expected a positive integer, found 'many'"),
    (["demo", "--mode", "sgd"], "invalid choice: 'sgd'"),
    ([], "the following arguments are required: command"),
])
def test_bad_flags(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
