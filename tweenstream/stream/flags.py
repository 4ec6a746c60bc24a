"""Argument types shared by the command-line subcommands."""

from __future__ import annotations

import argparse
from typing import Any


def positive(kind: type) -> Any:
    """An argparse type: a positive ``kind`` (int or float), with a message that says so.

    Examples
    --------
    >>> positive(int)("3")
    3
    >>> positive(float)("-1")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a positive float, found -1.0
    """
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, "
                                             f"found {text!r}") from None
        if not value > 0:  # also refuses nan
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, "
                                             f"found {value}")
        return value
    return parse
