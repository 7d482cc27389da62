"""Subcommands ``compress``, ``cost`` and ``calibrate`` (thin wrappers over the library stages).

``domainfit compress [DATA] --workspace DIR --config FILE --model M --split test --demo --quiet --json``
sweeps compression configurations; ``domainfit cost`` prices the index with
storage tiers; ``domainfit calibrate`` chooses similarity thresholds. DATA is a
BEIR folder; without it (and without ``--demo``) the folder ``bench`` used is taken.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from domainfit.cli_common import ConfigOpt, JsonOpt, QuietOpt, WorkspaceOpt, fail, guarded
from domainfit.progress import set_quiet
from domainfit.workspace import DEFAULT_WORKSPACE, Workspace

DataArg = Annotated[Path | None, typer.Argument(help="BEIR folder (default: the one `bench` used in the workspace)")]
DemoOpt = Annotated[bool, typer.Option("--demo", help="use the bundled demo corpus")]


def resolve_data(data: Path | None, demo: bool, workspace: Path, required: bool = True) -> Path | None:
    """Return the BEIR folder to use: DATA, the demo corpus, or the one ``bench`` recorded in the workspace."""
    if demo and data is not None:
        fail(2, "give either a DATA folder or --demo, not both")
    if demo:
        from domainfit.data.demo import demo_path

        return guarded(demo_path)
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


def _print_json(data: dict[str, Any]) -> None:
    """Write a result as JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


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
    data: DataArg = None,
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
    from domainfit.compress.stage import run_compress
    from domainfit.config import load_config

    set_quiet(quiet or as_json)
    folder = resolve_data(data, demo, workspace)
    cfg = guarded(load_config, config, {"compress": {"model": model, "split": split}})
    _operating_point(
        cfg, {"max_bytes_per_vector": max_bytes, "min_retention": min_retention, "max_p95_ms": max_latency_ms}
    )
    result = guarded(
        run_compress,
        folder,
        Workspace(workspace),
        cfg.compress,
        force=force,
        max_line_bytes=cfg.data.max_line_mib << 20,
    )
    if as_json:
        _print_json(result.to_json())
        return
    from rich.console import Console

    from domainfit.compress.report import highlights, variants_table

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


def cost(
    data: DataArg = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: DemoOpt = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="bi-encoder name or path")] = None,
    vectors: Annotated[int | None, typer.Option(help="vectors to price (default: the corpus size)")] = None,
    docs_per_second: Annotated[float | None, typer.Option(help="embedding throughput (default: probe)")] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Price storage (hot/warm/cold tiers), re-embedding and serving per year, against one float32 tier."""
    from domainfit.compress.cost_stage import run_cost
    from domainfit.config import load_config

    set_quiet(quiet or as_json)
    folder = resolve_data(data, demo, workspace, required=vectors is None)
    cfg = guarded(
        load_config,
        config,
        {"cost": {"model": model, "vectors": vectors, "embed_docs_per_second": docs_per_second}},
    )
    report = guarded(
        run_cost, folder, Workspace(workspace), cfg.cost, config_path=config, max_line_bytes=cfg.data.max_line_mib << 20
    )
    if as_json:
        _print_json(report.to_json())
        return
    from rich.console import Console

    from domainfit.compress.cost_stage import cost_markdown

    Console().print(cost_markdown(report), markup=False, highlight=False)
    typer.echo(f"wrote {Workspace(workspace).stage_dir('cost')}/cost.json and summary.md")


def calibrate(
    data: DataArg = None,
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
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Choose similarity thresholds by F-beta, per model and per compression configuration."""
    from domainfit.calibrate import run_calibrate
    from domainfit.config import load_config

    set_quiet(quiet or as_json)
    folder = resolve_data(data, demo, workspace)
    cfg = guarded(
        load_config,
        config,
        {"calibrate": {"models": model, "split": split, "beta": beta, "configurations": configuration}},
    )
    result = guarded(
        run_calibrate, folder, Workspace(workspace), cfg.calibrate, max_line_bytes=cfg.data.max_line_mib << 20
    )
    if as_json:
        _print_json(result.to_json())
        return
    from rich.console import Console

    from domainfit.calibrate import calibrate_markdown

    Console().print(calibrate_markdown(result), markup=False, highlight=False)
    typer.echo(f"wrote {result.output_dir}/thresholds.json and summary.md")


def register(app: typer.Typer) -> None:
    """Add ``compress``, ``cost`` and ``calibrate`` to the domainfit command line."""
    app.command("compress")(compress)
    app.command("cost")(cost)
    app.command("calibrate")(calibrate)
