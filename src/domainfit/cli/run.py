"""``domainfit run``: the whole loop over one workspace, skipping what is up to date."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from domainfit.cli.options import ConfigOpt, JsonOpt, QuietOpt, WorkspaceOpt, budget_seconds, resolve_data
from domainfit.core.progress import stderr_console
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace


def run(
    data: Annotated[Path | None, typer.Argument(help="BEIR folder (corpus, queries, qrels/train|dev|test)")] = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="the bundled demo corpus with its demo settings")] = False,
    force: Annotated[bool, typer.Option("--force", help="re-run stages whose inputs did not change")] = False,
    train_anyway: Annotated[bool, typer.Option("--train-anyway", help="train even if the decision says no")] = False,
    budget: Annotated[
        str | None, typer.Option("--budget", help="fit the run in this wall time: 30m, 1h30m, 90s ([run] budget)")
    ] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run bench, decide, synth, mine, train, eval, decide and report; stop early if training will not pay."""
    from importlib.resources import files

    from domainfit.config import load_config
    from domainfit.stages.pipeline import run_pipeline

    if demo:
        config = config or Path(str(files("domainfit") / "demo.toml"))
    data = resolve_data(data, demo, quiet or as_json)
    cfg = load_config(config)
    seconds = budget_seconds(budget)
    console = stderr_console()

    def progress(stage: str, status: str, seconds: float) -> None:
        if not (quiet or as_json):
            console.print(f"[bold]{stage}[/bold]: {status}" + (f" ({seconds:.0f} s)" if seconds >= 1 else ""))

    result = run_pipeline(
        data,
        Workspace(workspace),
        cfg,
        force=force,
        train_anyway=train_anyway,
        listener=progress,
        budget=seconds,
    )
    if as_json:
        sys.stdout.write(json.dumps(asdict(result), indent=2) + "\n")
        return
    from rich.console import Console
    from rich.markdown import Markdown

    summary = Path(workspace) / "report" / "report.md"
    if summary.is_file():
        Console(width=None if sys.stdout.isatty() else 160).print(Markdown(summary.read_text()))
    if result.stopped:
        typer.echo(f"stopped: {result.stopped}")
    typer.echo(f"decision before training: {result.decision_before}")
    if result.decision_after:
        typer.echo(f"decision after training: {result.decision_after}")
    typer.echo(f"report: {result.report}")
    _print_sample(Path(workspace), result.stages)


def _print_sample(workspace: Path, stages: list[dict[str, Any]]) -> None:
    """Print the index stage's sample search (when this run built or checked the index)."""
    if not any(s["stage"] == "index" for s in stages):
        return
    path = workspace / "index" / "build" / "result.json"
    try:
        sample = json.loads(path.read_text(encoding="utf-8")).get("sample") or {}
    except (OSError, ValueError):
        return
    typer.echo(f"sample search ({sample.get('mode')}): {sample.get('query')!r}")
    for rank, hit in enumerate(sample.get("hits", [])[:3], start=1):
        typer.echo(f"  {rank}. {hit['id']}  {hit['score']:.4f}  {hit.get('title', '')}")
    typer.echo(f"serve it: domainfit serve --workspace {workspace}")
