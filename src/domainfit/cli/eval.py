"""``domainfit eval``: the fine-tuned model against its base on the test split."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from domainfit.cli.options import ChunkingOpt, ConfigOpt, JsonOpt, QuietOpt, WorkspaceOpt, resolve_data
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace


def evaluate(
    data: Annotated[Path | None, typer.Argument(help="BEIR folder with the test split")] = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="use the bundled demo corpus")] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="fine-tuned model (default: workspace)")] = None,
    base_model: Annotated[str | None, typer.Option("--base-model", help="the model it was fine-tuned from")] = None,
    split: Annotated[str | None, typer.Option(help="qrels split to evaluate")] = None,
    general: Annotated[str | None, typer.Option(help="general-domain BEIR folder for the forgetting check")] = None,
    chunking: ChunkingOpt = None,
    force: Annotated[bool, typer.Option("--force", help="re-run even if inputs did not change")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare base and fine-tuned models: overall, per slice, significance, examples, forgetting."""
    from rich.console import Console
    from rich.markdown import Markdown

    from domainfit.config import load_config
    from domainfit.stages.eval import run_eval

    data = resolve_data(data, demo, quiet or as_json)
    overrides = {"model": model, "base_model": base_model, "split": split, "general": general}
    cfg = load_config(config, {"eval": overrides, "chunking": {"method": chunking}})
    result = run_eval(
        data,
        Workspace(workspace),
        cfg.eval,
        force=force,
        chunking=cfg.chunking,
        max_line_bytes=cfg.data.max_line_mib << 20,
        text=cfg.text,
    )
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    console = Console(width=None if sys.stdout.isatty() else 160)
    if result.up_to_date:
        console.print("[dim]eval is up to date (inputs unchanged)[/dim]")
    console.print(Markdown((Path(result.output_dir) / "summary.md").read_text()))


#: The function `domainfit.cli.app` registers as this stage's command.
command = evaluate
