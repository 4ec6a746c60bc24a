"""The tweenstream command: demo and info, with their errors."""

from __future__ import annotations

import json

import pytest

from tweenstream import load
from tweenstream.cli import main
from tweenstream.models import LSTM


def test_demo_learns_reports_and_saves(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--in-process", "--samples", "30000", "--report-every", "10000",
                 "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "switched tween -> backprop at sample" in text
    assert "a backprop copy won a race on the same samples" in text
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


def test_compile_fills_the_cache_with_progress(tmp_path, capsys):
    from tweenstream import Dense, Learner, Network

    assert main(["compile", "--kinds", "dense"]) == 0
    out, err = capsys.readouterr()
    assert "compile cache:" in out
    assert "[dense]" in err and ("compiled in" in err or "loaded from the compile cache" in err)
    model = Learner(Network((3, 2), [LSTM(2), Dense(2)]))
    model.save(tmp_path / "m.tsm")
    assert main(["compile", "--model", str(tmp_path / "m.tsm"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "compile cache:" in out
    from tweenstream.runtime.engine import engine_of

    assert engine_of(["dense", "lstm"]).learn_many.signatures  # compiled (or loaded) now


@pytest.mark.parametrize("argv, message", [
    (["compile", "--kinds", "dense,nonsense"], "unknown layer kind"),
    (["compile", "--model", "missing.tsm"], "tweenstream compile:"),
])
def test_compile_refuses_bad_input(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_compile_progress_names_what_compiles():
    import io

    from numba import njit

    from tweenstream.runtime.warmup import compile_progress

    @njit
    def fresh(x):
        return x + 1

    buf = io.StringIO()
    with compile_progress(label="probe", out=buf):
        fresh(1)
    text = buf.getvalue()
    assert "compiling fresh" in text and "1 functions compiled in" in text
