"""The error type shared by every boundary that answers with a reason code."""

from __future__ import annotations


class CodedError(ValueError):
    """A refusal with a machine-readable ``code`` and a human ``reason``.

    Examples
    --------
    >>> err = CodedError("nan", "X holds NaN")
    >>> err.code, str(err)
    ('nan', 'nan: X holds NaN')
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
