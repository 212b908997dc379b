"""One error type for bad input, rendered as one line by the CLI.

``InputError`` carries the file, the place inside it (a key path such as
``deployments[0].shape.accelerator`` or ``line 12``) and the reason.  The CLI
prints ``capsim: error: FILE: WHERE: REASON`` and exits with status 2.
"""

from __future__ import annotations


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
        parts = [p for p in (self.file, self.where) if p]
        return ": ".join([*parts, self.reason])


class OutputError(InputError):
    """An output folder that cannot be written: read-only, full, no permission."""


class OutputRefused(OutputError):
    """An output folder capsim will not replace: a file, or a folder it did not write."""
