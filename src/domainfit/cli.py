"""Command-line interface: ``domainfit <stage> [DATA] [options]``.

Every subcommand is a thin wrapper over a library function. Exit codes:
0 success, 1 a failure of the tool, 2 bad input or usage.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, TextIO

import typer

from domainfit import __version__
from domainfit.cli_common import (
    DEBUG_ENV,
    ConfigOpt,
    JsonOpt,
    MappedErrors,
    QuietOpt,
    WorkspaceOpt,
    fail,
    guarded,
    resolve_data,
)
from domainfit.errors import DomainfitWarning
from domainfit.workspace import DEFAULT_WORKSPACE, Workspace

app = typer.Typer(
    name="domainfit",
    help="Fit a text-embedding model to your own domain, and prove whether it was worth it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=MappedErrors,
)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help=f"show the traceback behind an error (or set {DEBUG_ENV}=1)")
    ] = False,
) -> None:
    """Fit a text-embedding model to your own domain, and prove whether it was worth it."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


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
    chunking: Annotated[
        str | None, typer.Option("--chunking", help="chunk long documents: none|auto|fixed|structural|recursive")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="re-run even if inputs did not change")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Measure BM25, dense, hybrid (and reranked) baselines on a BEIR folder."""
    from domainfit.bench import run_bench
    from domainfit.config import load_config

    data = resolve_data(data, demo, quiet or as_json)
    cfg = guarded(
        load_config,
        config,
        {
            "bench": {"split": split, "models": model, "reranker": reranker, "depth": depth},
            "chunking": {"method": chunking},
        },
    )
    result = guarded(
        run_bench,
        data,
        Workspace(workspace),
        cfg.bench,
        force=force,
        max_line_bytes=cfg.data.max_line_mib << 20,
        chunking=cfg.chunking,
    )
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    from rich.console import Console

    from domainfit.bench_summary import similarity_verdicts
    from domainfit.chunk_report import chunking_tables
    from domainfit.tables import slices_table, systems_table

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


@app.command()
def validate(
    data: Annotated[Path, typer.Argument(help="BEIR folder, or a pair file (.jsonl/.csv/.tsv)")],
    split: Annotated[
        list[str] | None, typer.Option("--split", help="a split that must be judged (repeatable; default: none)")
    ] = None,
) -> None:
    """Check a BEIR folder or pair file; print counts, or the first problem (exit 2).

    For a BEIR folder with several qrels splits, query families that cross
    splits (leakage) are listed and the exit code is 2. ``--split test`` also
    requires that split to exist with a judged query, as ``bench`` does.
    """
    if data.is_dir() and (data / "corpus.jsonl").exists():
        from domainfit.data.beir import load_beir
        from domainfit.data.checks import check_evaluated_split
        from domainfit.data.splits import check_qrels_leakage

        dataset = guarded(load_beir, data)
        for name in split or []:
            guarded(check_evaluated_split, dataset, name, data / "qrels")
        splits = ", ".join(f"{s}={len(q)}" for s, q in dataset.qrels.items()) or "no qrels"
        leaks = check_qrels_leakage(dataset.qrels, dataset.queries) if len(dataset.qrels) > 1 else []
        for leak in leaks[:20]:
            shown = ", ".join(leak.query_ids[:5])
            typer.echo(f"leak: family {leak.family!r} is in {' and '.join(leak.splits)} (queries {shown})", err=True)
        if leaks:
            fail(2, f"{data}/qrels: -: {len(leaks)} query families cross splits; fix with `domainfit split`")
        typer.echo(f"ok: {len(dataset.corpus)} documents, {len(dataset.queries)} queries, judged queries: {splits}")
        return
    from domainfit.data.pairs import read_pairs

    if not data.exists():
        fail(2, f"{data}: -: not found")
    pairs = guarded(read_pairs, data)
    typer.echo(f"ok: {len(pairs)} pairs")


@app.command()
def split(
    data: Annotated[Path, typer.Argument(help="BEIR folder whose judged queries are re-split")],
    out: Annotated[Path, typer.Option("--out", "-o", help="new BEIR folder to write (must not be DATA)")],
    ratios: Annotated[tuple[float, float, float], typer.Option(help="train dev test shares")] = (0.7, 0.1, 0.2),
    seed: Annotated[int, typer.Option(help="random seed (same seed, same split)")] = 13,
    overlap: Annotated[float, typer.Option(help="token Jaccard above which queries are one family")] = 0.8,
) -> None:
    """Split judged queries into train/dev/test so that no query family crosses splits."""
    from domainfit.data.beir import load_beir, write_beir
    from domainfit.data.resplit import resplit
    from domainfit.workspace import check_output_folder

    guarded(check_output_folder, out, data)  # never the data, inside or above it, nor a non-empty folder
    dataset = guarded(load_beir, data)
    if not dataset.qrels:
        fail(2, f"{data}/qrels: -: no qrels to split")
    if abs(sum(ratios) - 1.0) > 1e-6 or min(ratios) < 0:
        fail(2, f"--ratios must be non-negative and sum to 1, got {ratios}")
    new, summary = resplit(dataset, ratios=ratios, seed=seed, overlap_threshold=overlap)
    guarded(check_output_folder, out, data)  # checked again just before writing
    write_beir(new, out)
    for leak in summary.previous_leaks[:10]:
        typer.echo(f"fixed leak: family {leak.family!r} was in {' and '.join(leak.splits)}", err=True)
    parts = ", ".join(
        f"{s}={summary.queries_per_split[s]} queries/{summary.families_per_split[s]} families"
        for s in summary.queries_per_split
    )
    typer.echo(f"wrote {out}: {parts}")


@app.command()
def version() -> None:
    """Print the domainfit version."""
    typer.echo(__version__)


def _register_stage_commands() -> None:
    """Add the subcommands that live in their own ``cli_<stage>.py`` modules (each has ``register(app)``)."""
    import importlib

    for name in STAGE_MODULES:
        importlib.import_module(f"domainfit.{name}").register(app)


#: Modules that add subcommands to `app` through their ``register(app)`` function.
STAGE_MODULES: tuple[str, ...] = (
    "cli_train",
    "cli_eval",
    "cli_decide",
    "cli_report",
    "cli_run",
    "cli_mine",
    "cli_compress",
    "cli_synth",
)
_register_stage_commands()


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Print domainfit's own warnings as one ``warning: ...`` line on stderr; others as Python does."""
    text = (
        f"warning: {message}\n"
        if issubclass(category, DomainfitWarning)
        else warnings.formatwarning(message, category, filename, lineno, line)
    )
    (file or sys.stderr).write(text)


def main() -> None:
    """Console-script entry point; exits 2 on usage errors as Click does.

    ``--debug`` may stand anywhere on the command line (before ``--``): it is
    taken out and turns on tracebacks for errors (`MappedErrors`).
    """
    warnings.showwarning = _show_warning
    args = sys.argv[1:]
    end = args.index("--") if "--" in args else len(args)
    if "--debug" in args[:end]:
        os.environ[DEBUG_ENV] = "1"
        args = [a for a in args[:end] if a != "--debug"] + args[end:]
    app(args=args, prog_name="domainfit")


if __name__ == "__main__":
    main()
