"""``domainfit mine``: hard negatives, false-negative filtering and a curriculum as training datasets."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from domainfit.cli.errors import fail
from domainfit.cli.options import ChunkingOpt, ConfigOpt, JsonOpt, QuietOpt, WorkspaceOpt
from domainfit.core.progress import set_quiet
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace

if TYPE_CHECKING:
    from rich.table import Table

    from domainfit.stages.mine import MineResult


def _sources(value: str | None) -> list[str] | None:
    """Split ``--sources bm25,dense,random`` into names (validated by the config)."""
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        fail(2, "--sources needs at least one of: dense, bm25, random, clicks, llm")
    return names


def sources_table(result: MineResult) -> Table:
    """One row per source: what it returned, what each filter removed, what was kept."""
    from rich.table import Table

    table = Table(
        title=f"Hard negatives: {result.n_examples} examples x {result.negatives_per_example} negatives "
        f"({result.dropped_pairs} pairs dropped)"
    )
    columns = [
        ("retrieved", "retrieved"),
        ("labelled_skipped", "labelled skipped"),
        ("candidates", "in window"),
        ("duplicate", "duplicate"),
        ("margin_absolute", "abs margin"),
        ("margin_relative", "rel margin"),
        ("cross_encoder", "cross-enc"),
        ("selected", "chosen"),
        ("backfilled", "backfill"),
    ]
    table.add_column("source", no_wrap=True)
    for _, label in columns:
        table.add_column(label, justify="right")
    for name, stats in result.sources.items():
        table.add_row(name, *(f"{stats[key]:,}" for key, _ in columns))
    totals = {key: sum(s[key] for s in result.sources.values()) for key, _ in columns}
    table.add_row("[bold]all[/bold]", *(f"[bold]{totals[key]:,}[/bold]" for key, _ in columns))
    return table


def curriculum_table(result: MineResult) -> Table:
    """One row per curriculum stage with its size and difficulty range."""
    from rich.table import Table

    table = Table(title="Curriculum (difficulty = mean negative similarity - positive similarity)")
    for label in ("stage", "examples", "min", "mean", "max"):
        table.add_column(label, justify="left" if label == "stage" else "right")
    for stage in result.curriculum:

        def cell(key: str, stage: dict[str, object] = stage) -> str:
            value = stage[key]
            return "-" if value is None else f"{value:.3f}"

        table.add_row(
            stage["name"],
            str(stage["examples"]),
            cell("difficulty_min"),
            cell("difficulty_mean"),
            cell("difficulty_max"),
        )
    return table


def mine(
    data: Annotated[Path | None, typer.Argument(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")] = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="use the bundled demo corpus")] = False,
    negatives: Annotated[int | None, typer.Option("--negatives", "-n", help="negatives per example")] = None,
    sources: Annotated[
        str | None, typer.Option("--sources", help="comma-separated: dense,bm25,random,clicks,llm")
    ] = None,
    cross_encoder: Annotated[
        str | None, typer.Option("--cross-encoder", help="cross-encoder name or path for the false-negative check")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="base bi-encoder")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    chunking: ChunkingOpt = None,
    force: Annotated[bool, typer.Option("--force", help="re-run even if inputs did not change")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Mine hard negatives (BM25, dense, random, clicks, LLM), filter false negatives, build a curriculum."""
    from domainfit.config import load_config
    from domainfit.stages.mine import run_mine

    set_quiet(quiet or as_json)
    if demo == (data is not None):
        fail(2, "give either a DATA folder or --demo")
    if demo:
        from domainfit.data.demo import demo_path

        data = demo_path()
    assert data is not None
    overrides = {
        "negatives": negatives,
        "sources": _sources(sources),
        "cross_encoder": cross_encoder,
        "model": model,
        "seed": seed,
    }
    cfg = load_config(config, {"mine": overrides, "chunking": {"method": chunking}})
    result = run_mine(
        data,
        Workspace(workspace),
        cfg.mine,
        force=force,
        max_line_bytes=cfg.data.max_line_mib << 20,
        text=cfg.text,
        chunking=cfg.chunking,
    )
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    from rich.console import Console

    console = Console()
    if result.up_to_date:
        console.print(f"[dim]mine is up to date (inputs unchanged); showing {result.output_dir}/summary.json[/dim]")
    pairs = ", ".join(f"{k}={v}" for k, v in result.n_pairs.items())
    kinds = ", ".join(f"{k}={v}" for k, v in result.examples_by_query_source.items())
    console.print(f"training pairs: {pairs}; examples by query source: {kinds}")
    console.print(sources_table(result))
    console.print(curriculum_table(result))
    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    console.print(f"time: {seconds}")
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"wrote {result.output_dir}/dataset, curriculum/, negatives.jsonl and summary.json")


#: The function `domainfit.cli.app` registers as this stage's command.
command = mine
