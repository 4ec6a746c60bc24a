"""``tweenstream top``: a live terminal view of a running daemon, refreshed from ``status``.

One row per model: samples/s, sparklines of the running accuracy (or MAE) and loss, the
phase, explosions and rollbacks, the refinement job, and the checkpoint's age. Drawn with
``rich`` (the optional extra ``[top]``); it asks the control socket for ``status`` every
``--interval`` seconds, so it works wherever ``tweenstream status`` does.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from tweenstream.stream.flags import positive

BARS = "▁▂▃▄▅▆▇█"
HISTORY = 40  # points of each sparkline


def sparkline(values: Any, width: int = HISTORY) -> str:
    """The last ``width`` values as block characters scaled between their min and max.

    Examples
    --------
    >>> sparkline([0.0, 0.5, 1.0])
    '▁▅█'
    >>> sparkline([2.0, 2.0]), sparkline([])
    ('▁▁', '')
    """
    points = [float(v) for v in list(values)[-width:] if v == v]
    if not points:
        return ""
    lo, hi = min(points), max(points)
    span = hi - lo
    if span <= 0:
        return BARS[0] * len(points)
    return "".join(BARS[min(len(BARS) - 1, int((v - lo) / span * len(BARS)))] for v in points)


class Model:
    """What the view remembers of one model between two status replies."""

    def __init__(self) -> None:
        self.metric: deque[float] = deque(maxlen=HISTORY)
        self.loss: deque[float] = deque(maxlen=HISTORY)
        self.last: tuple[float, int] | None = None  # (time, samples_seen)
        self.rate = 0.0

    def update(self, status: dict[str, Any], now: float) -> None:
        """Take one status reply received at ``now`` (monotonic seconds)."""
        seen = int(status.get("samples_seen", 0))
        if self.last is not None and now > self.last[0]:
            self.rate = max(0.0, (seen - self.last[1]) / (now - self.last[0]))
        self.last = (now, seen)
        key = "running_accuracy" if "running_accuracy" in status else "running_mae"
        self.metric.append(float(status.get(key, float("nan"))))
        self.loss.append(float(status.get("running_loss", float("nan"))))


def render(models: dict[str, tuple[Model, dict[str, Any]]]) -> Any:
    """A rich table of the models (name -> (history, last status))."""
    from rich.table import Table

    table = Table(title="tweenstream top", expand=False)
    for column in ("model", "samples/s", "samples", "metric", "trend", "loss trend", "phase",
                   "explosions", "rollbacks", "refinement", "checkpoint age"):
        table.add_column(column)
    for name, (model, st) in models.items():
        metric = "accuracy" if "running_accuracy" in st else "mae"
        value = st.get(f"running_{metric}", float("nan"))
        refine = st.get("refinement") or {}
        refinement = ("running" if refine.get("running") else
                      f"{refine.get('accepted', 0)} accepted" if refine else "off")
        age = st.get("checkpoint_age_s")
        table.add_row(name, f"{model.rate:,.0f}", f"{st.get('samples_seen', 0):,}",
                      f"{metric} {value:.3f}", sparkline(model.metric), sparkline(model.loss),
                      str(st.get("phase", "?")), str(st.get("explosions", 0)),
                      str(st.get("rollbacks", 0)), refinement,
                      "none" if age is None else f"{age:.0f} s")
    return table


def add_top(sub: Any) -> None:
    p = sub.add_parser("top", help="a live view of a running daemon")
    p.add_argument("--control", help="control endpoint (default: this user's ipc socket)")
    p.add_argument("--interval", type=positive(float), default=1.0,
                   help="seconds between refreshes (default 1)")
    p.add_argument("--iterations", type=positive(int),
                   help="stop after this many refreshes (default: until Ctrl-C)")
    p.add_argument("--timeout", type=positive(float), default=2.0)
    p.add_argument("--curve-secret", type=Path, help="this client's secret certificate")
    p.add_argument("--server-key", type=Path, help="the daemon's public certificate")


def run_top(args: argparse.Namespace) -> int:
    """Refresh the view until Ctrl-C or ``--iterations``; exit 1 if the daemon stops
    answering."""
    try:
        from rich.live import Live
    except ModuleNotFoundError:
        print("tweenstream top: needs the rich package: pip install 'tweenstream[top]'",
              file=sys.stderr)
        return 2
    from tweenstream.stream.client import Control
    from tweenstream.stream.security import default_control

    history: dict[str, Model] = {}
    count = 0
    with Control(args.control or default_control(), timeout=args.timeout, retries=1,
                 curve_secret=args.curve_secret, server_public=args.server_key) as control, \
            Live(auto_refresh=False) as live:
        try:
            while args.iterations is None or count < args.iterations:
                if count:
                    time.sleep(args.interval)  # the refresh period, not a synchronisation
                try:
                    status = control.status()
                except TimeoutError as err:
                    live.console.print(f"tweenstream top: {err}")
                    return 1
                shown = status.get("models") or {"default": status}  # older daemons
                rows = {}
                for name, st in shown.items():
                    model = history.setdefault(name, Model())
                    model.update(st, time.monotonic())
                    rows[name] = (model, st)
                live.update(render(rows), refresh=True)
                count += 1
        except KeyboardInterrupt:
            pass
    return 0
