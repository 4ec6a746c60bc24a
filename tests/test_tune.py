"""``tweenstream tune``: a recorded stream replayed under many configurations with Ray Tune
and ASHA (a local Ray instance of 2 CPUs on loopback); the best one as a serve config file."""

from __future__ import annotations

import numpy as np
import pytest

from tweenstream import Dense, Network
from tweenstream.cli import main, serve_parser
from tweenstream.stream.serve_file import flag_defaults, read_config
from tweenstream.tuning import check_space, read_space, replay

pytestmark = pytest.mark.usefixtures("ray_local")


def _stream(n: int = 1_600, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    return X, (2 * (X[:, 0] > 0) + (X[:, 1] * X[:, 2] > 0)).astype(np.int64)


def test_tune_ranks_stops_weak_ones_early_and_writes_a_config_file_serve_reads(tmp_path,
                                                                              capsys):
    """One Ray Tune run through the command: the ranked table, ASHA's early stops, and the
    best configuration as a config file whose replay gives the score it reports."""
    X, y = _stream(seed=1)
    np.savez(tmp_path / "stream.npz", X=X, y=y)
    (tmp_path / "space.toml").write_text(
        '[space]\nmode = {choice = ["tween", "backprop"]}\n'
        'learning_rate = {loguniform = [0.001, 0.3]}\noptimizer = "sgd"\n')
    out = tmp_path / "tuned.toml"
    code = main(["tune", str(tmp_path / "stream.npz"), "--space", str(tmp_path / "space.toml"),
                 "--samples", "6", "--workers", "2", "--chunks", "4", "--seed", "3",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "library defaults" in printed
    rows = [line.split("|")[1:-1] for line in printed.splitlines()
            if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 6
    chunks = [int(r[2]) for r in rows]
    assert chunks[0] == 4 and min(chunks) < 4  # ASHA stopped some before the end
    finished = [float(r[1]) for r, c in zip(rows, chunks, strict=True) if c == 4]
    assert finished == sorted(finished, reverse=True)
    tables = read_config(out, flag_defaults(serve_parser()))
    net, settings = tables["network"], tables["settings"]
    assert net["mode"] in ("tween", "backprop") and net["inputs"] == 3
    assert 1e-3 <= settings["learning_rate"] <= 0.3 and settings["optimizer"] == "sgd"
    network = Network(3, [Dense(32, "relu"), Dense(32, "relu"), Dense(4)])
    score = replay(network, {"mode": net["mode"], **settings}, X, y, chunks=4, seed=3)
    assert score == pytest.approx(finished[0], abs=1e-4)  # the replay is the trial's


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
