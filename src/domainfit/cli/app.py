"""The domainfit command line: ``domainfit <command> [DATA] [options]``.

Every command is a thin wrapper over a stage or a library function, in its own
module; `commands` lists them in the order of the loop, grouped into help panels
(prepare, measure, train, ship, operate): a stage's command and panel are those
it declares (`domainfit.stages.registry`). Errors become exit codes in one place,
`domainfit.cli.errors.MappedErrors`: 0 success, 1 a failure of the tool, 2 bad
input or usage.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Annotated, TextIO

import typer

from domainfit.cli.errors import DEBUG_ENV, MappedErrors
from domainfit.core.errors import DomainfitWarning
from domainfit.stages.contract import OPERATE, PREPARE
from domainfit.stages.registry import STAGES

#: The commands that are not a stage, before and after the stages: (command, module under domainfit.cli, panel).
_BEFORE = (("validate", "validate", PREPARE), ("split", "split", PREPARE))
_AFTER = (("serve", "serve", OPERATE), ("run", "run", OPERATE), ("version", "version", OPERATE))


def commands() -> list[tuple[str, str, str]]:
    """Return every command in loop order with its module and help panel; a stage's come from its declaration.

    A stage's command lives in ``domainfit.cli.<command>``, whose ``command`` is the function.
    """
    staged = [(s.command, s.command, s.panel) for s in STAGES if s.command is not None]
    return [*_BEFORE, *staged, *_AFTER]


app = typer.Typer(
    name="domainfit",
    help="Fit a text-embedding model to your own domain, and prove whether it was worth it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=MappedErrors,
)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help=f"show the traceback behind an error (or set {DEBUG_ENV}=1)")
    ] = False,
) -> None:
    """Fit a text-embedding model to your own domain, and prove whether it was worth it."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


def _register() -> None:
    """Add every command of `commands` to `app`, in order, each in its help panel."""
    for name, module, panel in commands():
        loaded = importlib.import_module(f"domainfit.cli.{module}")
        app.command(name, rich_help_panel=panel)(getattr(loaded, "command", None) or getattr(loaded, name))


_register()


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Print domainfit's own warnings as one ``warning: ...`` line on stderr; others as Python does."""
    text = (
        f"warning: {message}\n"
        if issubclass(category, DomainfitWarning)
        else warnings.formatwarning(message, category, filename, lineno, line)
    )
    (file or sys.stderr).write(text)


def main() -> None:
    """Console-script entry point; exits 2 on usage errors as Click does.

    ``--debug`` may stand anywhere on the command line (before ``--``): it is
    taken out and turns on tracebacks for errors (`MappedErrors`).
    """
    warnings.showwarning = _show_warning
    args = sys.argv[1:]
    end = args.index("--") if "--" in args else len(args)
    if "--debug" in args[:end]:
        os.environ[DEBUG_ENV] = "1"
        args = [a for a in args[:end] if a != "--debug"] + args[end:]
    app(args=args, prog_name="domainfit")


if __name__ == "__main__":
    main()
