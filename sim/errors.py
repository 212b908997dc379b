"""One error type for bad input, rendered as one line by the CLI.

``InputError`` carries the file, the place inside it (a key path such as
``deployments[0].shape.accelerator`` or ``line 12``) and the reason.  The CLI
prints ``capsim: error: FILE: WHERE: REASON`` and exits with status 2.  The
line stays short whatever the input: long values are elided (:func:`elide`)
and the whole line is capped at :data:`MAX_LINE` characters.
"""

from __future__ import annotations

import re

# Exit codes of every capsim command (documented in the README and `capsim --help`).
EXIT_OK = 0
EXIT_FAILED = 1  # a regression (compare) or failed runs (sweep)
EXIT_BAD_INPUT = 2  # bad input or usage
EXIT_INTERNAL = 3  # a bug
EXIT_INTERRUPTED = 130  # Ctrl-C

MAX_LINE = 400  # characters of an error line, after "capsim: error: "
MAX_VALUE = 80  # characters of one quoted value inside a reason


def elide(text: str, limit: int = MAX_VALUE) -> str:
    """``text`` on one line, cut in the middle with ``…`` when longer than ``limit``."""
    text = re.sub(r"\s*[\r\n]+\s*", " ", text)
    if len(text) <= limit:
        return text
    keep = max(limit - 1, 2)
    head = keep * 2 // 3
    return f"{text[:head]}…{text[len(text) - (keep - head):]}"


def quoted(value: object, limit: int = MAX_VALUE) -> str:
    """``repr(value)``, elided: safe to put in an error line whatever ``value`` is."""
    try:
        text = repr(value)
    except Exception:  # a repr that fails is still a value to name
        text = f"<{type(value).__name__}>"
    return elide(text, limit)


class InputError(Exception):
    """Bad user input: a scenario key, a unit, a trace row, a shape that does not fit."""

    def __init__(self, reason: str, *, file: str | None = None, where: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.file = file
        self.where = where

    def with_file(self, file: str) -> InputError:
        """The same error, attributed to ``file`` unless it already names one."""
        if self.file is None:
            self.file = file
        return self

    def __str__(self) -> str:
        parts = [elide(p, 160) for p in (self.file, self.where) if p]
        return elide(": ".join([*parts, self.reason]), MAX_LINE)


class OutputError(InputError):
    """An output folder that cannot be written: read-only, full, no permission."""


class OutputRefused(OutputError):
    """An output folder capsim will not replace: a file, or a folder it did not write."""
