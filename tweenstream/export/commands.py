"""``tweenstream export MODEL OUT.onnx [--int8] [--check-data FILE]``."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any


def add_export(sub: Any) -> None:
    p = sub.add_parser("export", help="export a saved model to ONNX, with a parity report")
    p.add_argument("model", type=Path, help="a model saved with Learner.save")
    p.add_argument("out", type=Path, help="the .onnx file to write")
    p.add_argument("--int8", action="store_true", help="also write a dynamic-int8 model")
    p.add_argument("--check-data", type=Path,
                   help=".npz (X, y) or .csv: recorded samples for the parity check, and the "
                        "held-out set for the int8 accuracy change")
    p.add_argument("--max-accuracy-drop", type=float, default=0.01,
                   help="warn when int8 loses more accuracy than this (default 0.01)")
    p.add_argument("--labels", help="comma-separated class labels or output names")


def run_export(args: argparse.Namespace) -> int:
    """Export and print the report as JSON; exit 2 on bad input, 1 if parity fails."""
    from tweenstream.export.builder import ExportError, export
    from tweenstream.runtime.persist import ModelFileError, load
    from tweenstream.stream.commands import read_samples

    try:
        learner = load(args.model)
        data = None
        if args.check_data is not None:
            data = read_samples(args.check_data, learner.network.task == "regression")
        labels = args.labels.split(",") if args.labels else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = export(learner, args.out, recorded=data[0][:256] if data else None,
                            check_data=data, int8=args.int8,
                            max_accuracy_drop=args.max_accuracy_drop, labels=labels)
        for w in caught:
            print(f"tweenstream export: warning: {w.message}", file=sys.stderr)
    except (ModelFileError, ValueError, OSError) as err:
        print(f"tweenstream export: {err}", file=sys.stderr)
        return 2
    except ExportError as err:
        print(f"tweenstream export: {err}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1))
    return 0
