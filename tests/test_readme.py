"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    text = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    predicted, accuracy = capsys.readouterr().out.split()
    assert predicted in {"0", "1", "2", "3"} and float(accuracy) > 0.9
    assert (tmp_path / "model.tsm").exists()
