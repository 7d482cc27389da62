"""Error types shared by every stage.

`InputError` is what bad user input raises: it renders as one line,
``file:line: field: what is wrong``, and the CLI turns it into exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class DomainfitError(Exception):
    """A failure of the tool itself (exit code 1)."""


@dataclass
class InputError(DomainfitError):
    """Bad input from the user (exit code 2).

    Inputs: the offending file, the 1-based line number (0 when the problem
    is about the whole file), the field name ("-" when none applies) and a
    short description of what is wrong.
    """

    path: str | Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        """Render as ``file:line: field: message`` (line omitted when 0)."""
        where = f"{self.path}:{self.line}" if self.line else f"{self.path}"
        return f"{where}: {self.field}: {self.message}"


class UsageError(DomainfitError):
    """A bad option or combination of options (exit code 2)."""


class DomainfitWarning(UserWarning):
    """Something the user should know that does not stop the run; the CLI prints it as one ``warning:`` line."""
