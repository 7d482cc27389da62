"""``domainfit synth``: synthetic queries and click pairs as training data (a thin wrapper over `run_synth`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from domainfit.cli.errors import fail
from domainfit.cli.options import ChunkingOpt, ConfigOpt, JsonOpt, QuietOpt, WorkspaceOpt, resolve_data
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace

if TYPE_CHECKING:
    from rich.table import Table

    from domainfit.synth.results import SynthResult

_FILTER_LABELS = (
    ("length", "length"),
    ("leakage", "leakage"),
    ("eval_document", "eval doc"),
    ("duplicate", "duplicate"),
    ("near_duplicate", "near-dup"),
    ("roundtrip", "round trip"),
)


def _names(value: str | None, option: str) -> list[str] | None:
    """Split a comma-separated option into names (validated by the config); ``none`` or ``""`` means none."""
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip() and part.strip().lower() != "none"]
    if len(names) != len(set(names)):
        fail(2, f"{option} repeats a name: {value}")
    return names


def sources_table(result: SynthResult) -> Table:
    """One row per source: generated, removed by each filter, kept, seconds; then the totals."""
    from rich.table import Table

    table = Table(title=f"Synthetic queries: {result.n_kept:,} kept of {result.n_generated:,} generated")
    table.add_column("source", no_wrap=True)
    table.add_column("generated", justify="right")
    for _, label in _FILTER_LABELS:
        table.add_column(label, justify="right")
    table.add_column("kept", justify="right")
    table.add_column("time", justify="right")
    for name, stats in result.sources.items():
        seconds = result.seconds.get(f"generate_{name}")
        table.add_row(
            name,
            f"{stats['generated']:,}",
            *(f"{stats['removed'][key]:,}" for key, _ in _FILTER_LABELS),
            f"{stats['kept']:,}",
            "-" if seconds is None else f"{seconds:.1f}s",
        )
    table.add_row(
        "[bold]all[/bold]",
        f"[bold]{result.n_generated:,}[/bold]",
        *(f"[bold]{result.filters[key]:,}[/bold]" for key, _ in _FILTER_LABELS),
        f"[bold]{result.n_kept:,}[/bold]",
        f"[bold]{result.seconds.get('total', 0.0):.1f}s[/bold]",
    )
    return table


def _print_details(console: Any, result: SynthResult) -> None:
    """Print the LLM bill, click share and the time spent filtering."""
    if result.llm is not None:
        llm = result.llm
        console.print(
            f"LLM: {llm['requests']} requests ({llm['cached']} from cache, {llm['retries']} retries), "
            f"{llm['prompt_tokens']:,} prompt + {llm['completion_tokens']:,} completion tokens, "
            f"${llm['cost_usd']:.4f}"
        )
    if result.clicks is not None and result.click_share is not None:
        share = result.click_share
        console.print(
            f"clicks: {result.clicks['impressions']:,} searches -> {result.clicks['kept_pairs']:,} pairs "
            f"({result.clicks['below_min_clicks']:,} below min_clicks, {result.clicks['merged_repeats']:,} "
            f"repeats in a session merged); {share['of_synthetic']:.1%} of synthetic queries, "
            f"{share['of_training_pairs']:.1%} of all training pairs"
        )
    console.print(
        f"sources: {result.n_source_documents:,} of {result.n_documents:,} documents "
        f"({result.excluded_eval_documents:,} held-out positives excluded); "
        f"leakage: {result.leakage['dropped']:,} queries matched one of {result.leakage['held_out_queries']:,} "
        f"held-out queries; filtering took {result.seconds.get('filter', 0.0):.1f}s"
    )


def _assign(section: Any, values: dict[str, tuple[Any, str]]) -> None:
    """Set nested config values given on the command line (validated; a bad value exits 2 naming the option)."""
    from pydantic import ValidationError

    for key, (value, option) in values.items():
        if value is None:
            continue
        try:
            setattr(section, key, value)
        except ValidationError as exc:
            fail(2, f"{option}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}")


def synth(
    data: Annotated[Path | None, typer.Argument(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")] = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="use the bundled demo corpus")] = False,
    generators: Annotated[
        str | None,
        typer.Option(
            "--generators", "-g", help="offline generators, comma-separated: title,heading,cloze,salient or none"
        ),
    ] = None,
    llm_base_url: Annotated[
        str | None, typer.Option("--llm-base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    ] = None,
    llm_model: Annotated[str | None, typer.Option("--llm-model", help="model name sent to the endpoint")] = None,
    clicks: Annotated[Path | None, typer.Option("--clicks", help="search log with clicks (JSONL)")] = None,
    roundtrip: Annotated[
        str | None, typer.Option("--roundtrip", help="round-trip filter: bm25, dense, either or none")
    ] = None,
    max_documents: Annotated[int | None, typer.Option(help="generate from at most this many documents")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    chunking: ChunkingOpt = None,
    force: Annotated[bool, typer.Option("--force", help="re-run even if inputs did not change")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate synthetic queries (offline, LLM) and click pairs; filter duplicates, leaks and failed round trips."""
    from domainfit.config import load_config
    from domainfit.stages.synth import run_synth

    data = resolve_data(data, demo, quiet or as_json)
    cfg = load_config(
        config,
        {
            "synth": {
                "generators": _names(generators, "--generators"),
                "roundtrip": roundtrip,
                "max_documents": max_documents,
                "seed": seed,
            },
            "chunking": {"method": chunking},
        },
    )
    _assign(cfg.synth.llm, {"base_url": (llm_base_url, "--llm-base-url"), "model": (llm_model, "--llm-model")})
    _assign(cfg.synth.clicks, {"path": (clicks, "--clicks")})
    result = run_synth(
        data,
        Workspace(workspace),
        cfg.synth,
        force=force,
        max_line_bytes=cfg.data.max_line_mib << 20,
        text=cfg.text,
        chunking=cfg.chunking,
    )
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 160)
    if result.up_to_date:
        console.print(f"[dim]synth is up to date (inputs unchanged); showing {result.output_dir}/summary.json[/dim]")
    console.print(sources_table(result))
    _print_details(console, result)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"wrote {result.output_dir}/queries.jsonl and summary.json")


#: The function `domainfit.cli.app` registers as this stage's command.
command = synth
