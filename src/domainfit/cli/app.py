"""The domainfit command line: ``domainfit <command> [DATA] [options]``.

Every command is a thin wrapper over a stage or a library function, in its own
module; `COMMANDS` lists them in the order of the loop, grouped into help panels
(prepare, measure, train, ship, operate). Errors become exit codes in one place,
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

PREPARE, MEASURE, TRAIN, SHIP, OPERATE = "Prepare", "Measure", "Train", "Ship", "Operate"

#: Every command in loop order: (command, module under domainfit.cli, function, help panel).
COMMANDS: tuple[tuple[str, str, str, str], ...] = (
    ("validate", "validate", "validate", PREPARE),
    ("split", "split", "split", PREPARE),
    ("bench", "bench", "bench", MEASURE),
    ("decide", "decide", "decide", MEASURE),
    ("synth", "synth", "synth", TRAIN),
    ("mine", "mine", "mine", TRAIN),
    ("train", "train", "train", TRAIN),
    ("eval", "eval", "evaluate", TRAIN),
    ("compress", "compress", "compress", SHIP),
    ("cost", "cost", "cost", SHIP),
    ("calibrate", "calibrate", "calibrate", SHIP),
    ("report", "report", "report", SHIP),
    ("run", "run", "run", OPERATE),
    ("version", "version", "version", OPERATE),
)

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
    """Add every command of `COMMANDS` to `app`, in order, each in its help panel."""
    for name, module, function, panel in COMMANDS:
        command = getattr(importlib.import_module(f"domainfit.cli.{module}"), function)
        app.command(name, rich_help_panel=panel)(command)


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
