"""Every learner setting from ``serve``: a TOML config file, ``--set`` flags, the ``configure``
control command, and ``tweenstream config --print-defaults``."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from dataclasses import asdict

import pytest
from stream_helpers import serve_process, short_folder

from tweenstream.cli import _parser, _subparser, main
from tweenstream.runtime.config import TweenConfig
from tweenstream.stream.client import Control
from tweenstream.stream.commands import with_config_file
from tweenstream.stream.serve_file import (
    ConfigFileError,
    _value,
    flag_defaults,
    parse_set,
    read_config,
)

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


@pytest.fixture
def folder():
    with short_folder() as path:
        yield path


def _defaults() -> dict:
    return flag_defaults(_subparser(_parser(), "serve"))


def test_set_flags_are_read_and_checked_like_the_python_api():
    assert parse_set(["learning_rate=0.01", "optimizer=sgd", "grad_clip=none",
                      "chain_gate=true", "batch_size=4", 'scaling="off"']) == {
        "learning_rate": 0.01, "optimizer": "sgd", "grad_clip": None, "chain_gate": True,
        "batch_size": 4, "scaling": "off"}
    for pairs, error in ((["learning_rate=-1"], ValueError), (["batch_size=2.5"], TypeError),
                         (["optimizer=lbfgs"], ValueError), (["no_such=1"], TypeError),
                         (["chain_gate=3"], TypeError)):
        with pytest.raises(error) as found:
            parse_set(pairs)
        key, _, text = pairs[0].partition("=")
        with pytest.raises(error) as api:  # the very message of TweenConfig
            TweenConfig(**{key: _value(text)})
        assert str(found.value) == str(api.value)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_set(["learning_rate"])


def test_a_config_file_is_checked_key_by_key(folder):
    path = folder / "serve.toml"
    cases = {
        "[servr]\ndata = 'x'\n": "unknown table",
        "[serve]\ncheckpoint_evry = 5\n": "unknown key",
        "[network]\nhidden = [0]\n": "hidden must be a list of positive ints",
        "[settings]\nlearning_rate = -0.5\n": "learning_rate must be > 0",
        "[settings]\nlearning_rate = \n": "not a valid TOML file",
        "[serve]\nconfig = 'other.toml'\n": "unknown key",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigFileError, match=message):
            read_config(path, _defaults())
    with pytest.raises(ConfigFileError, match="cannot read"):
        read_config(folder / "absent.toml", _defaults())


def test_print_defaults_reads_back_as_the_defaults(folder):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["config", "--print-defaults"]) == 0
    text = out.getvalue()
    path = folder / "defaults.toml"
    path.write_text(text)
    tables = read_config(path, _defaults())
    defaults = asdict(TweenConfig())
    for name, value in defaults.items():  # every setting is in the file, with a comment
        assert f"{name} =" in text, name
        if value is not None:
            assert tables["settings"][name] == value, name
    assert tables["serve"]["checkpoint_every"] == 100_000
    assert tables["network"]["hidden"] == (32, 32)
    assert "tween_rate = 0.3  # Tween: base rate" in text
    assert tomllib.loads(text)  # plain TOML


def test_flags_win_over_the_file(folder):
    path = folder / "serve.toml"
    path.write_text("[serve]\ncheckpoint_every = 500\nmax_streams = 7\n"
                    "[network]\nhidden = [16]\nmode = 'backprop'\n"
                    "[settings]\nlearning_rate = 0.05\nmomentum = 0.5\n")
    argv = ["serve", "--config", str(path), "--max-streams", "9", "--set", "learning_rate=0.02"]
    parser = _parser()
    args = with_config_file(parser, _subparser(parser, "serve"), argv, parser.parse_args(argv))
    assert args.checkpoint_every == 500 and args.max_streams == 9
    assert args.hidden == (16,) and args.mode == "backprop"
    assert args.file_settings == {"learning_rate": 0.05, "momentum": 0.5}
    assert parse_set(args.set) == {"learning_rate": 0.02}


def test_a_daemon_takes_its_settings_from_the_file_and_flags_and_changes_them_live(folder):
    path = folder / "serve.toml"
    path.write_text("[serve]\nmax_streams = 7\n[network]\ninputs = 3\nhidden = [8]\n"
                    "mode = 'backprop'\n[settings]\nlearning_rate = 0.05\nmomentum = 0.5\n"
                    "optimizer = 'sgd'\n")
    with serve_process(folder, "--config", str(path), "--set", "learning_rate=0.02",
                       "--set", "diagnostics_every=5") as proc:
        with Control(f"ipc://{folder}/ctl", timeout=120, retries=1) as control:
            st = control.status()
            s = st["settings"]
            assert (s["learning_rate"], s["momentum"], s["optimizer"]) == (0.02, 0.5, "sgd")
            assert s["diagnostics_every"] == 5 and st["mode"] == "backprop"
            assert st["serve"]["max_streams"] == 7
            changed = control.configure(learning_rate=0.001, grad_clip=1.0)
            assert changed["ok"], changed
            assert control.status()["settings"]["learning_rate"] == 0.001
            for bad, message in (({"learning_rate": -1}, "learning_rate must be > 0"),
                                 ({"mode": "tween"}, "set_phase"),
                                 ({"no_such": 1}, "unknown setting"),
                                 ({"reservoir_size": 10}, "cannot change on a live learner")):
                reply = control.configure(**bad)
                assert not reply["ok"] and reply["code"] == "bad_request", reply
                assert message in reply["reason"], reply
            assert control.call("configure", settings=[1, 2])["code"] == "bad_request"
            assert control.status()["settings"]["learning_rate"] == 0.001  # nothing changed
            assert control.shutdown()["ok"]
        assert proc.wait(timeout=30) == 0
    events = [json.loads(line) for line in (folder / "log").read_text().splitlines()]
    started = [e for e in events if e.get("event") == "settings"]
    assert started and started[0]["settings"]["learning_rate"] == 0.02
    assert started[0]["given"] == ["diagnostics_every", "learning_rate", "momentum", "optimizer"]
    assert any(e.get("event") == "configured" for e in events)


@pytest.mark.parametrize("flags, message", [
    (["--set", "learning_rate=-1"], "learning_rate must be > 0"),
    (["--config", "{folder}/absent.toml"], "cannot read the config file"),
])
def test_bad_settings_stop_serve_before_it_starts(folder, flags, message):
    with serve_process(folder, *(f.format(folder=folder) for f in flags),
                       stderr=subprocess.PIPE) as proc:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert message in err and "Traceback" not in err
