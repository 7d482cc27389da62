"""The one place where errors become exit codes: one ``error:`` line on stderr, 2 for bad input, 1 otherwise.

Every command runs inside `MappedErrors`, so a command never catches domainfit's
errors itself: it calls the library and lets what it raises come here.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from domainfit.core.errors import DomainfitError, InputError, UsageError
from domainfit.core.progress import stderr_console

#: Set to 1 (or pass ``--debug``) to see the traceback behind an error.
DEBUG_ENV = "DOMAINFIT_DEBUG"

#: Operating-system errors that mean the user named a path that cannot be used (exit 2); others exit 1.
_USER_ERRNOS = frozenset({errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.EACCES, errno.EPERM,
                          errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP})  # fmt: skip


def fail(code: int, message: str) -> NoReturn:
    """Print one error line on stderr and exit with ``code``."""
    from rich.markup import escape

    stderr_console().print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def debug_enabled() -> bool:
    """Return True when tracebacks should be shown (``--debug`` or ``DOMAINFIT_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def os_error_line(exc: OSError) -> tuple[int, str]:
    """Return (exit code, one line naming the path) for an operating-system error."""
    where = exc.filename if exc.filename is not None else "-"
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    return (2 if exc.errno in _USER_ERRNOS else 1), f"{where}: -: {reason}"


def error_exit(exc: BaseException) -> tuple[int, str]:
    """Map any exception a command raised to (exit code, one error line)."""
    if isinstance(exc, (InputError, UsageError)):
        return 2, str(exc)
    if isinstance(exc, DomainfitError):
        return 1, str(exc)
    if isinstance(exc, OSError):
        return os_error_line(exc)
    if isinstance(exc, MemoryError):
        return 1, "out of memory; try a smaller batch_size or max_seq_length"
    if isinstance(exc, UnicodeError):
        return 2, f"-: -: text that cannot be encoded or decoded ({exc})"
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return 1, f"internal error: {type(exc).__name__}: {detail} (run with --debug for the traceback)"


class MappedErrors(TyperGroup):
    """The command group: every error a command raises becomes one ``error:`` line and an exit code.

    domainfit's input and usage errors exit 2, its other errors 1; operating-system
    errors name the path (exit 2 for a path the user gave that cannot be used, 1
    otherwise, such as no space left); anything else is an internal error (exit 1).
    With ``--debug`` or ``DOMAINFIT_DEBUG=1`` the traceback is printed as well.
    """

    def invoke(self, ctx: Any) -> Any:  # the framework's Context
        """Run the command, mapping what it raises (the CLI framework's own exits and usage errors pass through)."""
        try:
            return super().invoke(ctx)
        except SystemExit:
            raise
        except KeyboardInterrupt:
            stderr_console().print("[red]error:[/red] interrupted", highlight=False)
            raise typer.Exit(130) from None
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in ("typer", "click"):
                raise  # Exit, Abort and usage errors: the framework prints them and sets the code
            if debug_enabled():
                traceback.print_exception(exc, file=sys.stderr)
            code, line = error_exit(exc)
            fail(code, line)
