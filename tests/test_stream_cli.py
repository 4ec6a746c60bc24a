"""tweenstream send / status / keys against a daemon in a thread."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import quadrant_data
from stream_helpers import Served

from tweenstream import Learner
from tweenstream.cli import main


@pytest.fixture
def served(net_a):
    s = Served(Learner(net_a, seed=0))
    yield s
    s.stop()


def test_send_npz_then_status(served, tmp_path, capsys):
    X, y = quadrant_data(1000, seed=0)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    assert main(["send", str(tmp_path / "d.npz"), "--data", served.config.data, "--batch", "300",
                 "--stream", "file", "--rate", "1000000"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 1000 and report["messages"] == 4 and report["next_seq"] == 4
    served.wait(lambda s: s["samples_seen"] == 1000)
    assert main(["status", "--control", served.config.control]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["streams"]["file"]["last_seq"] == 3


def test_send_csv(served, tmp_path, capsys):
    X, y = quadrant_data(10, seed=1)
    rows = "\n".join(",".join(f"{v:.6f}" for v in x) + f",{c}" for x, c in zip(X, y, strict=True))
    (tmp_path / "d.csv").write_text("a,b,c,d,e,f,g,h,label\n" + rows + "\n")
    assert main(["send", str(tmp_path / "d.csv"), "--data", served.config.data]) == 0
    served.wait(lambda s: s["samples_seen"] == 10)


@pytest.mark.parametrize("content, name, message", [
    (None, "missing.npz", "no such file"),
    (b"a,b\n1,2.5\n", "bad.csv", "labels must be integers (or pass --regression)"),
    (b"x", "data.txt", "use a .npz (arrays X, y) or a .csv (last column y)"),
    (b"a,b,y\n1,2,0\n1,nan,1\n", "nan.csv", "row 1 of X has NaN or inf; nothing was sent"),
])
def test_send_file_errors(tmp_path, capsys, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["send", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_send_npz_needs_x_and_y(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", inputs=np.zeros((2, 2)))
    assert main(["send", str(tmp_path / "d.npz")]) == 2
    assert "needs arrays named X and y, found ['inputs']" in capsys.readouterr().err


def test_status_of_nobody(capsys, tmp_path):
    assert main(["status", "--control", f"ipc://{tmp_path}/none", "--timeout", "0.05",
                 "--retries", "1"]) == 1
    assert "no reply from" in capsys.readouterr().err


def test_keys(tmp_path, capsys):
    assert main(["keys", str(tmp_path / "k"), "daemon"]) == 0
    paths = json.loads(capsys.readouterr().out)
    assert paths["public"].endswith("daemon.key") and paths["secret"].endswith("daemon.key_secret")
