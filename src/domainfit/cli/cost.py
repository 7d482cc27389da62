"""``domainfit cost``: yearly cost of storage tiers, re-embedding and serving, against one float32 tier."""

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


def cost(
    data: WorkspaceDataArg = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: DemoOpt = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="bi-encoder name or path")] = None,
    vectors: Annotated[int | None, typer.Option(help="vectors to price (default: the corpus size)")] = None,
    docs_per_second: Annotated[float | None, typer.Option(help="embedding throughput (default: probe)")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="measure and price again even if inputs did not change")
    ] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Price storage (hot/warm/cold tiers), re-embedding and serving per year, against one float32 tier."""
    from domainfit.config import load_config
    from domainfit.stages.cost import run_cost

    set_quiet(quiet or as_json)
    folder = workspace_data(data, demo, workspace, required=vectors is None)
    cfg = load_config(
        config,
        {"cost": {"model": model, "vectors": vectors, "embed_docs_per_second": docs_per_second}},
    )
    report = run_cost(
        folder,
        Workspace(workspace),
        cfg.cost,
        config_path=config,
        max_line_bytes=cfg.data.max_line_mib << 20,
        text=cfg.text,
        force=force,
    )
    if as_json:
        print_json(report.to_json())
        return
    from rich.console import Console

    from domainfit.render.cost import cost_markdown

    Console().print(cost_markdown(report), markup=False, highlight=False)
    typer.echo(f"wrote {Workspace(workspace).stage_dir('cost')}/cost.json and summary.md")


#: The function `domainfit.cli.app` registers as this stage's command.
command = cost
