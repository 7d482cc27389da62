"""``domainfit compress``: sweep dimensions, precisions and product quantisation; choose an operating point.

``domainfit compress [DATA] --workspace DIR --config FILE --model M --split test --demo --quiet --json``;
DATA is a BEIR folder; without it (and without ``--demo``) the folder ``bench`` used is taken.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from domainfit.cli.errors import fail
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


def _operating_point(cfg: Any, overrides: dict[str, Any]) -> None:
    """Apply command-line operating-point constraints to the loaded config (exit 2 when invalid)."""
    from pydantic import ValidationError

    from domainfit.compress.config import OperatingPointConfig

    updates = {k: v for k, v in overrides.items() if v is not None}
    if not updates:
        return
    try:
        cfg.compress.operating_point = OperatingPointConfig.model_validate(
            {**cfg.compress.operating_point.model_dump(), **updates}
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        fail(2, f"<options>: compress.operating_point.{'.'.join(map(str, err['loc']))}: {err['msg']}")


def compress(
    data: WorkspaceDataArg = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: DemoOpt = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="bi-encoder name or path")] = None,
    split: Annotated[str | None, typer.Option(help="qrels split to evaluate")] = None,
    max_bytes: Annotated[float | None, typer.Option(help="operating point: most bytes per vector")] = None,
    min_retention: Annotated[float | None, typer.Option(help="operating point: least retention (0-1)")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(help="operating point: most p95 latency (ms)")] = None,
    force: Annotated[bool, typer.Option("--force", help="re-measure even if inputs did not change")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Sweep dimensions, precisions and product quantisation; draw the frontier; pick an operating point."""
    from domainfit.config import load_config
    from domainfit.stages.compress import run_compress

    set_quiet(quiet or as_json)
    folder = workspace_data(data, demo, workspace)
    assert folder is not None  # required: workspace_data exits 2 when there is none
    cfg = load_config(config, {"compress": {"model": model, "split": split}})
    _operating_point(
        cfg, {"max_bytes_per_vector": max_bytes, "min_retention": min_retention, "max_p95_ms": max_latency_ms}
    )
    result = run_compress(
        folder,
        Workspace(workspace),
        cfg.compress,
        force=force,
        max_line_bytes=cfg.data.max_line_mib << 20,
        text=cfg.text,
    )
    if as_json:
        print_json(result.to_json())
        return
    from rich.console import Console

    from domainfit.render.compress import highlights, variants_table

    console = Console()
    if result.up_to_date:
        console.print(f"[dim]compress is up to date (inputs unchanged); showing {result.output_dir}/results.json[/dim]")
    op = result.operating_point
    console.print(variants_table(result.variants, result.primary_metric, result.latency_metric, op.get("name")))
    for line in highlights(result):
        console.print(f"- {line}")
    console.print(f"[bold]operating point:[/bold] {op['reason'] if op.get('name') else 'none: ' + op['reason']}")
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"wrote {result.output_dir}/results.json, summary.md and frontier.png")


#: The function `domainfit.cli.app` registers as this stage's command.
command = compress
