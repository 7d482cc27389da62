"""Shared pieces of the command line: option types and error-to-exit-code mapping.

Stage modules (``cli_<stage>.py``) import these and expose ``register(app)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from domainfit.errors import DomainfitError, InputError, UsageError
from domainfit.progress import stderr_console

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="workspace folder")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="domainfit.toml", exists=False)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON on stdout")]
ChunkingOpt = Annotated[
    str | None, typer.Option("--chunking", help="chunk long documents: none|auto|fixed|structural|recursive")
]


def fail(code: int, message: str) -> NoReturn:
    """Print one error line on stderr and exit with ``code``."""
    from rich.markup import escape

    stderr_console().print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def guarded(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a stage, mapping domainfit errors to exit codes 2 (input) and 1 (tool)."""
    try:
        return func(*args, **kwargs)
    except (InputError, UsageError) as exc:
        fail(2, str(exc))
    except DomainfitError as exc:
        fail(1, str(exc))


def resolve_data(data: Path | None, demo: bool, quiet: bool) -> Path:
    """Apply ``--quiet`` and return the data folder: DATA, or the bundled demo with ``--demo`` (exactly one)."""
    from domainfit.progress import set_quiet

    set_quiet(quiet)
    if demo == (data is not None):
        fail(2, "give either a DATA folder or --demo")
    if demo:
        from domainfit.data.demo import demo_path

        return Path(guarded(demo_path))
    assert data is not None
    return data
