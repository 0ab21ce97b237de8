"""The one user-facing error type: a bad suite, data set or model, told in one line."""

from __future__ import annotations

from pathlib import Path


class OverfitLabError(Exception):
    """A problem the user can fix: names the file, the key and the fix.

    The CLI prints ``str(error)`` as a single line and exits with status 2.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        key: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.key = key
        self.fix = fix
        super().__init__(self.format())

    def format(self) -> str:
        where = ": ".join(part for part in (self.file, self.key) if part)
        line = f"{where}: {self.message}" if where else self.message
        if self.fix:
            line += f" Fix: {self.fix}"
        return " ".join(line.split())  # always one line


class CellFailure(Exception):
    """A grid cell could not finish (e.g. non-finite loss); recorded as failed, the grid goes on."""
