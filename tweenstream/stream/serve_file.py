"""The settings of ``tweenstream serve`` from a TOML file and ``--set`` flags.

A config file has up to four kinds of table; every key is optional::

    [serve]        # the serve flags, by their long names with _ for - (data, checkpoint_dir, ...)
    [network]      # the built-in network: inputs, outputs, hidden, activation, task, mode, seed
    [settings]     # any TweenConfig field (learning_rate, optimizer, tween_rate, ...)
    [models.NAME]  # a named model, its routes and what it changes (``model_plans.py``); with
                   # none, the daemon serves one model that every stream goes to

Precedence, lowest first: the defaults, the file, the flags (``--set KEY=VALUE`` for a
setting). Settings are checked by ``TweenConfig`` itself, so they fail with the errors of the
Python API. ``defaults_text`` writes a commented file of every default
(``tweenstream config --print-defaults``).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the standard library's tomllib is the tomli package before Python 3.11
    import tomli as tomllib

from tweenstream.runtime.config import TweenConfig
from tweenstream.stream.model_plans import MODEL_KEYS
from tweenstream.stream.routing import check_model_name, check_routes

NETWORK_KEYS = ("inputs", "outputs", "hidden", "activation", "task", "mode", "seed")
TABLES = ("serve", "network", "settings", "models")
# serve flags a file does not set: the file itself, the settings flag, and what names secrets
_NOT_IN_FILE = ("help", "config", "set")


class ConfigFileError(ValueError):
    """A config file that cannot be used: unreadable, not TOML, or holding an unknown key."""


def flag_defaults(serve_parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The serve parser's destinations and their defaults (what ``read_config`` accepts).

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> _ = parser.add_argument("--max-streams", type=int, default=1024)
    >>> flag_defaults(parser)["max_streams"]
    1024
    """
    return {a.dest: a.default for a in serve_parser._actions if a.option_strings}


def read_config(path: str | Path, serve_flags: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The tables of a config file, checked: ``{"serve": ..., "network": ..., "settings": ...}``.

    ``serve_flags`` maps the serve parser's destinations to their defaults (what ``[serve]``
    and ``[network]`` may set). Settings are checked with ``TweenConfig``.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "serve.toml"
    >>> _ = p.write_text('[settings]\\nlearning_rate = 0.01\\n[network]\\nhidden = [16]\\n')
    >>> read_config(p, {"hidden": (32, 32)})
    {'serve': {}, 'network': {'hidden': (16,)}, 'settings': {'learning_rate': 0.01}, 'models': {}}
    """
    data = read_toml(path, "the config file", ConfigFileError)
    unknown = sorted(set(data) - set(TABLES))
    if unknown:
        raise ConfigFileError(f"{path}: unknown table(s) {unknown}; a config file has "
                              f"{', '.join(f'[{t}]' for t in TABLES)}")
    out: dict[str, dict[str, Any]] = {}
    for table in TABLES:
        values = data.get(table, {})
        if not isinstance(values, dict):
            raise ConfigFileError(f"{path}: {table} must be a table ([{table}])")
        out[table] = values
    for table, allowed in (("serve", set(serve_flags) - set(NETWORK_KEYS) - set(_NOT_IN_FILE)),
                           ("network", set(NETWORK_KEYS))):
        bad = sorted(set(out[table]) - allowed)
        if bad:
            raise ConfigFileError(f"{path}: unknown key(s) {bad} in [{table}]; see "
                                  "`tweenstream config --print-defaults` for every key")
    if "hidden" in out["network"]:
        hidden = out["network"]["hidden"]
        if not isinstance(hidden, list) or not all(type(h) is int and h > 0 for h in hidden):
            raise ConfigFileError(f"{path}: [network] hidden must be a list of positive ints "
                                  f"like [32, 32], found {hidden!r}")
        out["network"]["hidden"] = tuple(hidden)
    try:
        TweenConfig(**out["settings"])
    except (TypeError, ValueError) as err:
        raise ConfigFileError(f"{path}: [settings]: {err}") from None
    for name, table in out["models"].items():
        _check_model(path, name, table)
    return out


def _check_model(path: str | Path, name: str, table: Any) -> None:
    """The keys of a ``[models.NAME]`` table (their values are checked when it is built)."""
    try:
        check_model_name(name)
        if not isinstance(table, dict):
            raise ValueError("expected a table ([models.NAME])")
        bad = sorted(set(table) - set(MODEL_KEYS))
        if bad:
            raise ValueError(f"unknown key(s) {bad}; a model takes {', '.join(MODEL_KEYS)}")
        if "routes" in table:
            check_routes(table["routes"])
        TweenConfig(**table.get("settings", {}))
    except (TypeError, ValueError) as err:
        raise ConfigFileError(f"{path}: [models.{name}]: {err}") from None


def read_toml(path: str | Path, what: str, error: type[ValueError] = ValueError
              ) -> dict[str, Any]:
    """A TOML file's tables; ``error`` (a ValueError) names the file and what is wrong.

    Examples
    --------
    >>> read_toml("missing.toml", "the search space")
    Traceback (most recent call last):
    ...
    ValueError: missing.toml: cannot read the search space (No such file or directory)
    """
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as err:
        raise error(f"{path}: cannot read {what} ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise error(f"{path}: not a valid TOML file ({err})") from None


def parse_set(pairs: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` flags as settings, each value read as TOML reads one (``true``,
    ``0.01``, ``"adam"`` or a bare word such as ``adam``; ``none`` for None); then checked by
    ``TweenConfig``, with its errors.

    Examples
    --------
    >>> parse_set(["learning_rate=0.01", "optimizer=sgd", "grad_clip=none", "chain_gate=true"])
    {'learning_rate': 0.01, 'optimizer': 'sgd', 'grad_clip': None, 'chain_gate': True}
    >>> parse_set(["learning_rate=-1"])
    Traceback (most recent call last):
    ...
    ValueError: learning_rate must be > 0, found -1
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE like learning_rate=0.01, found {pair!r}")
        out[key] = _value(text.strip())
    TweenConfig(**out)
    return out


def _value(text: str) -> Any:
    if text.lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: a string


def merged_settings(file_settings: dict[str, Any], flag_settings: dict[str, Any]
                    ) -> dict[str, Any]:
    """The settings in effect from a file and ``--set`` flags (flags win), checked together.

    Examples
    --------
    >>> merged_settings({"learning_rate": 0.1, "momentum": 0.5}, {"learning_rate": 0.01})
    {'learning_rate': 0.01, 'momentum': 0.5}
    """
    out = {**file_settings, **flag_settings}
    TweenConfig(**out)
    return out


def defaults_text(serve_parser: argparse.ArgumentParser) -> str:
    """A commented TOML file of every setting at its default (``config --print-defaults``);
    ``read_config`` reads it back unchanged.

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> _ = parser.add_argument("--data", default="tcp://127.0.0.1:5555", help="data endpoint")
    >>> text = defaults_text(parser)
    >>> 'data = "tcp://127.0.0.1:5555"' in text, "tween_rate = 0.3" in text
    (True, True)
    """
    lines = ["# tweenstream serve: every setting at its default. Uncomment and edit; flags on",
             "# the command line win over this file (tweenstream serve --config FILE).", ""]
    network: list[tuple[str, Any, str]] = []
    serve: list[tuple[str, Any, str]] = []
    helps = {a.dest: a.help or "" for a in serve_parser._actions}
    for dest, default in flag_defaults(serve_parser).items():
        if dest in _NOT_IN_FILE:
            continue
        entry = (dest, default, helps[dest])
        (network if dest in NETWORK_KEYS else serve).append(entry)
    for table, entries in (("network", network), ("serve", serve)):
        lines.append(f"[{table}]")
        lines += [_line(name, value, note) for name, value, note in entries]
        lines.append("")
    lines.append("[settings]")
    notes = _setting_notes()
    for name, value in asdict(TweenConfig()).items():
        lines.append(_line(name, value, notes.get(name, "")))
    lines += ["", *_MODELS_EXAMPLE]
    return "\n".join(lines) + "\n"


_MODELS_EXAMPLE = [
    "# Several models in one daemon: one [models.NAME] table each (without any, one model",
    "# serves every stream). A stream goes to the model that names it exactly in its routes,",
    "# else to the first model whose pattern matches it. A model takes the keys of [network],",
    "# model (a saved model file), checkpoint_every, checkpoint_interval, keep,",
    "# checkpoint_budget, output_dir, label_capacity, label_max_age, max_streams, stream_ttl,",
    "# max_seq_jump, strict_order, reservoir and the refine_* keys; what it leaves out comes",
    "# from the tables above. Its checkpoints go to CHECKPOINT_DIR/models/NAME.",
    "#",
    "# [models.sensors]",
    '# routes = ["sensor-*"]',
    "# inputs = 8",
    "# outputs = 4",
    "# [models.sensors.settings]",
    "# learning_rate = 0.02",
]


def _line(name: str, value: Any, note: str) -> str:
    note = re.sub(r"\s+", " ", note).strip()
    text = _toml(value)
    if text is None:  # TOML has no null: a commented line, at its default
        return f"# {name} =   # default: none. {note}".rstrip()
    return f"{name} = {text}" + (f"  # {note}" if note else "")


def _toml(value: Any) -> str | None:
    if value is None or value is argparse.SUPPRESS:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) or "" for v in value) + "]"
    if isinstance(value, (str, Path)):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return None


def _setting_notes() -> dict[str, str]:
    """Each TweenConfig field's description, from the class docstring's parameter list."""
    notes: dict[str, str] = {}
    names: list[str] = []
    text: list[str] = []
    doc = (TweenConfig.__doc__ or "").split("Examples")[0]
    known = {f.name for f in fields(TweenConfig)}
    for line in doc.splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            for name in names:
                notes[name] = " ".join(text)
            head = [n.strip() for n in line.split(":")[0].split(",")]
            names = [n for n in head if n in known]
            text = []
        elif line.strip():
            text.append(line.strip())
    for name in names:
        notes[name] = " ".join(text)
    return notes
