"""``domainfit calibrate``: similarity thresholds by F-beta, per model and compression configuration."""

from __future__ import annotations

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


def calibrate(
    data: WorkspaceDataArg = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: DemoOpt = False,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="bi-encoder (repeatable)")] = None,
    split: Annotated[str | None, typer.Option(help="split that calibrates the thresholds")] = None,
    beta: Annotated[float | None, typer.Option(help="F-beta's beta (>1 favours recall)")] = None,
    configuration: Annotated[
        list[str] | None,
        typer.Option("--configuration", "-C", help="compression configuration, e.g. pca-128/int8 (repeatable)"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="calibrate again even if inputs did not change")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Choose similarity thresholds by F-beta, per model and per compression configuration."""
    from domainfit.config import load_config
    from domainfit.stages.calibrate import run_calibrate

    set_quiet(quiet or as_json)
    folder = workspace_data(data, demo, workspace)
    assert folder is not None  # required: workspace_data exits 2 when there is none
    cfg = load_config(
        config,
        {"calibrate": {"models": model, "split": split, "beta": beta, "configurations": configuration}},
    )
    result = run_calibrate(
        folder,
        Workspace(workspace),
        cfg.calibrate,
        max_line_bytes=cfg.data.max_line_mib << 20,
        text=cfg.text,
        force=force,
    )
    if as_json:
        print_json(result.to_json())
        return
    from rich.console import Console

    from domainfit.render.calibrate import calibrate_markdown

    Console().print(calibrate_markdown(result), markup=False, highlight=False)
    typer.echo(f"wrote {result.output_dir}/thresholds.json and summary.md")


#: The function `domainfit.cli.app` registers as this stage's command.
command = calibrate
