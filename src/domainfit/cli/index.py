"""``domainfit index``: build or update the serving index of the deployed system (incremental, resumable)."""

from __future__ import annotations

from typing import Annotated

import typer

from domainfit.cli.options import (
    ConfigOpt,
    DemoOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    WorkspaceDataArg,
    WorkspaceOpt,
    print_json,
    workspace_data,
)
from domainfit.core.progress import set_quiet
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace


def index(
    data: WorkspaceDataArg = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: DemoOpt = False,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="model to index with (default: the deployed system's)")
    ] = None,
    backend: Annotated[str | None, typer.Option(help="lancedb (default, embedded) or qdrant (local mode)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="documents embedded and committed together")] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Build or update the serving index: embed only new, changed or missing documents; move production to it."""
    from domainfit.config import load_config
    from domainfit.stages.index import run_index

    set_quiet(quiet or as_json)
    folder = workspace_data(data, demo, workspace)
    assert folder is not None  # required: workspace_data exits 2 when there is none
    cfg = load_config(config, {"index": {"model": model, "backend": backend, "batch_size": batch_size}})
    result = run_index(
        folder,
        Workspace(workspace),
        cfg.index,
        cfg.eval,
        max_line_bytes=cfg.data.max_line_mib << 20,
        text=cfg.text,
        force=force,
    )
    if as_json:
        print_json(result.to_json())
        return
    s = result.sync
    typer.echo(
        f"{'up to date: ' if result.up_to_date else ''}indexed {result.documents} documents of {result.corpus!r} "
        f"with {result.system} (version {result.version}): {s.get('embedded', 0)} embedded, "
        f"{s.get('written', 0)} written, {s.get('deleted', 0)} deleted"
    )
    typer.echo(f"production reads tag {result.pointer['tag']} via {result.folder}/serving.json")


#: The function `domainfit.cli.app` registers as this stage's command.
command = index
