"""``domainfit bench``: BM25, dense, hybrid (and reranked) baselines on a BEIR folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from domainfit.cli.options import (
    ChunkingOpt,
    ConfigOpt,
    DemoOpt,
    ForceOpt,
    JsonOpt,
    QuietOpt,
    WorkspaceOpt,
    print_json,
    resolve_data,
)
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace


def bench(
    data: Annotated[Path | None, typer.Argument(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")] = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: DemoOpt = False,
    split: Annotated[str | None, typer.Option(help="qrels split to evaluate")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="bi-encoder (repeatable)")] = None,
    reranker: Annotated[str | None, typer.Option(help="cross-encoder to rerank the best run")] = None,
    depth: Annotated[int | None, typer.Option(help="documents retrieved per query")] = None,
    chunking: ChunkingOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Measure BM25, dense, hybrid (and reranked) baselines on a BEIR folder."""
    from domainfit.config import load_config
    from domainfit.stages.bench import run_bench

    data = resolve_data(data, demo, quiet or as_json)
    cfg = load_config(
        config,
        {
            "bench": {"split": split, "models": model, "reranker": reranker, "depth": depth},
            "chunking": {"method": chunking},
        },
    )
    result = run_bench(
        data,
        Workspace(workspace),
        cfg.bench,
        force=force,
        max_line_bytes=cfg.data.max_line_mib << 20,
        text=cfg.text,
        chunking=cfg.chunking,
    )
    if as_json:
        print_json(result.to_json())
        return
    from rich.console import Console

    from domainfit.render.bench_summary import similarity_verdicts
    from domainfit.render.chunking import chunking_tables
    from domainfit.render.tables import slices_table, systems_table

    console = Console(width=None if sys.stdout.isatty() else 160)
    if result.up_to_date:
        console.print(f"[dim]bench is up to date (inputs unchanged); showing {result.output_dir}/metrics.json[/dim]")
    console.print(systems_table(result, cfg.bench.primary_metric))
    for table in chunking_tables(result.chunking, cfg.bench.primary_metric):
        console.print(table)
    console.print(slices_table(result, cfg.bench.primary_metric))
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    for line in similarity_verdicts(result):
        console.print(f"similarity: {line}", markup=False)
    console.print(f"wrote {result.output_dir}/summary.md, metrics.json and runs/*.trec")


#: The function `domainfit.cli.app` registers as this stage's command.
command = bench
