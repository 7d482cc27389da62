"""Options every command shares, and how a command finds its data folder.

``--workspace DIR`` (default ``./domainfit-work``), ``--config FILE``,
``--quiet``, ``--json``, ``--chunking`` and ``--budget`` mean the same in every
command; DATA is a BEIR folder, or the bundled demo with ``--demo``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from domainfit.cli.errors import fail
from domainfit.core.errors import UsageError

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="workspace folder")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="domainfit.toml", exists=False)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON on stdout")]
DemoOpt = Annotated[bool, typer.Option("--demo", help="use the bundled demo corpus")]
ForceOpt = Annotated[bool, typer.Option("--force", help="re-run even if inputs did not change")]
ChunkingOpt = Annotated[
    str | None, typer.Option("--chunking", help="chunk long documents: none|auto|fixed|structural|recursive")
]
#: DATA of the commands after ``bench``: without it (and without ``--demo``) the folder ``bench`` used is taken.
WorkspaceDataArg = Annotated[
    Path | None, typer.Argument(help="BEIR folder (default: the one `bench` used in the workspace)")
]


def resolve_data(data: Path | None, demo: bool, quiet: bool) -> Path:
    """Apply ``--quiet`` and return the data folder: DATA, or the bundled demo with ``--demo`` (exactly one)."""
    from domainfit.core.progress import set_quiet

    set_quiet(quiet)
    if demo == (data is not None):
        fail(2, "give either a DATA folder or --demo")
    if demo:
        from domainfit.data.demo import demo_path

        return Path(demo_path())
    assert data is not None
    return data


def workspace_data(data: Path | None, demo: bool, workspace: Path, required: bool = True) -> Path | None:
    """Return the BEIR folder to use: DATA, the demo corpus, or the one ``bench`` recorded in the workspace."""
    from domainfit.core.workspace import Workspace

    if demo and data is not None:
        fail(2, "give either a DATA folder or --demo, not both")
    if demo:
        from domainfit.data.demo import demo_path

        return demo_path()
    if data is not None:
        return data
    recorded = Workspace(workspace).stage_dir("bench") / "config.json"
    if recorded.is_file():
        folder = json.loads(recorded.read_text()).get("data")
        if folder and Path(folder).is_dir():
            return Path(folder)
    if required:
        fail(2, "give a DATA folder or --demo (no `bench` run in the workspace to take the data from)")
    return None


def print_json(data: Any) -> None:
    """Write a result as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def budget_seconds(text: str | None) -> float | None:
    """``--budget`` in seconds (None when not given); a one-line usage error when it is not a duration."""
    from domainfit.budget.duration import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as err:
        raise UsageError(f"--budget: {err}") from None
