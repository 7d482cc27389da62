"""Command-line interface: ``domainfit <stage> [DATA] [options]``.

Every subcommand is a thin wrapper over a library function. Exit codes:
0 success, 1 a failure of the tool, 2 bad input or usage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from domainfit import __version__
from domainfit.errors import DomainfitError, InputError, UsageError
from domainfit.progress import set_quiet, stderr_console
from domainfit.workspace import DEFAULT_WORKSPACE, Workspace

app = typer.Typer(
    name="domainfit",
    help="Fit a text-embedding model to your own domain, and prove whether it was worth it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="workspace folder")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="domainfit.toml", exists=False)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON on stdout")]


def _fail(code: int, message: str) -> None:
    """Print one error line on stderr and exit with ``code``."""
    stderr_console().print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def _guarded(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a stage, mapping domainfit errors to exit codes 2 (input) and 1 (tool)."""
    try:
        return func(*args, **kwargs)
    except (InputError, UsageError) as exc:
        _fail(2, str(exc))
    except DomainfitError as exc:
        _fail(1, str(exc))


@app.command()
def bench(
    data: Annotated[Path | None, typer.Argument(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")] = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="use the bundled demo corpus")] = False,
    split: Annotated[str | None, typer.Option(help="qrels split to evaluate")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="bi-encoder (repeatable)")] = None,
    reranker: Annotated[str | None, typer.Option(help="cross-encoder to rerank the best run")] = None,
    depth: Annotated[int | None, typer.Option(help="documents retrieved per query")] = None,
    force: Annotated[bool, typer.Option("--force", help="re-run even if inputs did not change")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Measure BM25, dense, hybrid (and reranked) baselines on a BEIR folder."""
    from domainfit.bench import run_bench
    from domainfit.config import load_config

    set_quiet(quiet or as_json)
    if demo == (data is not None):
        _fail(2, "give either a DATA folder or --demo")
    if demo:
        from domainfit.data.demo import demo_path

        data = demo_path()
    assert data is not None
    cfg = _guarded(load_config, config, {"bench": {"split": split, "models": model, "reranker": reranker, "depth": depth}})
    result = _guarded(run_bench, data, Workspace(workspace), cfg.bench, force=force)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    from rich.console import Console

    from domainfit.tables import slices_table, systems_table

    console = Console()
    if result.up_to_date:
        console.print(f"[dim]bench is up to date (inputs unchanged); showing {result.output_dir}/metrics.json[/dim]")
    console.print(systems_table(result, cfg.bench.primary_metric))
    console.print(slices_table(result, cfg.bench.primary_metric))
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"wrote {result.output_dir}/metrics.json and runs/*.trec")


@app.command()
def validate(
    data: Annotated[Path, typer.Argument(help="BEIR folder, or a pair file (.jsonl/.csv/.tsv)")],
) -> None:
    """Check a BEIR folder or pair file; print counts, or the first problem (exit 2)."""
    if data.is_dir() and (data / "corpus.jsonl").exists():
        from domainfit.data.beir import load_beir

        dataset = _guarded(load_beir, data)
        splits = ", ".join(f"{s}={len(q)}" for s, q in dataset.qrels.items()) or "no qrels"
        typer.echo(f"ok: {len(dataset.corpus)} documents, {len(dataset.queries)} queries, judged queries: {splits}")
        return
    from domainfit.data.pairs import read_pairs

    pairs = _guarded(read_pairs, data)
    typer.echo(f"ok: {len(pairs)} pairs")


@app.command()
def version() -> None:
    """Print the domainfit version."""
    typer.echo(__version__)


def main() -> None:
    """Console-script entry point; exits 2 on usage errors as Click does."""
    app()


if __name__ == "__main__":
    main()
