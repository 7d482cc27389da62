"""``domainfit migrate STEP [DATA]``: move the serving index to a new model, one recorded, reversible step at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from domainfit.cli.options import (
    ConfigOpt,
    DemoOpt,
    JsonOpt,
    QuietOpt,
    WorkspaceDataArg,
    WorkspaceOpt,
    print_json,
    workspace_data,
)
from domainfit.core.progress import set_quiet
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace

#: Steps that read only the workspace (DATA is not needed).
_WORKSPACE_ONLY = ("promote", "rollback")


def migrate(
    step: Annotated[str, typer.Argument(help="plan | backfill | bridge | compare | promote | rollback")],
    data: WorkspaceDataArg = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: DemoOpt = False,
    to: Annotated[
        str | None, typer.Option("--to", help="the new model (default: the system decide says to deploy)")
    ] = None,
    max_seq_length: Annotated[int | None, typer.Option(help="the new model's window (default: eval's)")] = None,
    split: Annotated[str | None, typer.Option(help="benchmark split compared and bridged on (default test)")] = None,
    canaries: Annotated[
        Path | None, typer.Option(help="file of canary query ids, one a line (default: the split's queries)")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="re-run even if nothing changed; promote despite a no-go; roll back over a pointer that moved",
        ),
    ] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Migrate the serving index to a new model: plan, backfill, bridge, compare, promote, rollback.

    Each step is recorded in <workspace>/migrate/log.jsonl and is a no-op when
    re-run with nothing changed. Production (index/serving.json) moves only on
    promote (which needs a go from compare, or --force) and rollback. Exit
    codes: 0 done (compare and bridge: go), 1 no-go from compare or bridge, or
    a promotion refused for want of a go; 2 bad input or a step out of order.
    """
    from domainfit.config import load_config
    from domainfit.core.errors import UsageError
    from domainfit.stages.migrate import STEPS
    from domainfit.stages.migrate_run import run_migrate

    if step not in STEPS:
        raise UsageError(f"unknown migrate step {step!r}; use one of {', '.join(STEPS)}")
    set_quiet(quiet or as_json)
    folder = workspace_data(data, demo, workspace, required=step not in _WORKSPACE_ONLY)
    cfg = load_config(
        config,
        {
            "migrate": {
                "model": to,
                "max_seq_length": max_seq_length,
                "split": split,
                "canaries": str(canaries) if canaries is not None else None,
            }
        },
    )
    result = run_migrate(step, Workspace(workspace), folder if step not in _WORKSPACE_ONLY else None, cfg, force=force)
    if as_json:
        print_json(result.to_json())
    else:
        typer.echo(("up to date: " if result.up_to_date else "") + f"migrate {step}: {result.summary}")
    if result.go is False and step in ("compare", "bridge"):
        raise typer.Exit(1)


#: The function `domainfit.cli.app` registers as this stage's command.
command = migrate
