"""``tweenstream tune``: a recorded stream replayed under many configurations with Ray Tune
and ASHA (a local Ray instance of 2 CPUs on loopback); the best one as a serve config file."""

from __future__ import annotations

import numpy as np
import pytest

from tweenstream import Dense, Network
from tweenstream.cli import main, serve_parser
from tweenstream.stream.serve_file import flag_defaults, read_config
from tweenstream.tuning import check_space, read_space, replay, tune_stream

pytestmark = pytest.mark.usefixtures("ray_local")


def _stream(n: int = 1_600, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    return X, (2 * (X[:, 0] > 0) + (X[:, 1] * X[:, 2] > 0)).astype(np.int64)


def test_tune_ranks_configurations_and_stops_weak_ones_early():
    X, y = _stream()
    net = Network(3, [Dense(16, "relu"), Dense(4)])
    space = {"mode": {"choice": ["tween", "backprop"]},
             "learning_rate": {"loguniform": [1e-3, 0.3]}, "optimizer": "sgd"}
    result = tune_stream(net, X, y, space, samples=6, workers=2, chunks=4, grace=1, seed=3)
    ranked = result["ranked"]
    assert len(ranked) == 6
    finished = [r for r in ranked if r["chunks"] == 4]
    assert finished and len(finished) < 6  # ASHA stopped some before the end
    assert [r["score"] for r in finished] == sorted((r["score"] for r in finished),
                                                    reverse=True)
    best = ranked[0]
    assert best["config"]["mode"] in ("tween", "backprop")
    assert 1e-3 <= best["config"]["learning_rate"] <= 0.3
    assert best["config"]["optimizer"] == "sgd"
    # a trial's score is the replay's: the same configuration, replayed here, scores the same
    assert replay(net, best["config"], X, y, chunks=4, seed=3) == pytest.approx(best["score"])
    assert 0.0 < result["defaults"] <= 1.0


def test_the_command_writes_a_config_file_that_serve_reads(tmp_path, capsys):
    X, y = _stream(seed=1)
    np.savez(tmp_path / "stream.npz", X=X, y=y)
    (tmp_path / "space.toml").write_text(
        '[space]\nmode = {choice = ["backprop"]}\nlearning_rate = {loguniform = [0.01, 0.1]}\n')
    out = tmp_path / "tuned.toml"
    code = main(["tune", str(tmp_path / "stream.npz"), "--space", str(tmp_path / "space.toml"),
                 "--samples", "3", "--workers", "2", "--chunks", "3", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "| rank | score |" in printed and "library defaults" in printed
    tables = read_config(out, flag_defaults(serve_parser()))
    assert tables["network"]["mode"] == "backprop" and tables["network"]["inputs"] == 3
    assert 0.01 <= tables["settings"]["learning_rate"] <= 0.1


@pytest.mark.parametrize("text, words", [
    ("[space]\nwarp = 1\n", "'warp' is not a learner setting"),
    ("[space]\nlearning_rate = {normal = [0, 1]}\n", "must be a value or one of"),
    ("[space]\nlearning_rate = {loguniform = [0.0, 1]}\n", "loguniform needs low > 0"),
    ("[space]\nlearning_rate = {uniform = [1, 0]}\n", "needs [low, high]"),
    ("[other]\n", "a search space is one [space] table"),
])
def test_a_bad_space_is_refused_with_its_reason(tmp_path, text, words):
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(ValueError) as err:
        read_space(tmp_path / "s.toml")
    assert words in str(err.value)
    check_space({"tween_rate": 0.1})  # a fixed value is fine
