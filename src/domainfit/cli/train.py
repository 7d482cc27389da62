"""``domainfit train``: fine-tune the base model on the workspace's training data."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from domainfit.cli.errors import fail
from domainfit.cli.options import ChunkingOpt, ConfigOpt, JsonOpt, QuietOpt, WorkspaceOpt, budget_seconds
from domainfit.core.progress import set_quiet
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace


def train(
    data: Annotated[
        Path | None, typer.Argument(help="BEIR folder (train split for pairs, dev split for evaluation)")
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="use the bundled demo corpus")] = False,
    loss: Annotated[
        str | None, typer.Option(help="mnrl, cached-mnrl, triplet, contrastive, cosine, margin-mse")
    ] = None,
    base_model: Annotated[str | None, typer.Option("--model", "-m", help="base bi-encoder")] = None,
    epochs: Annotated[float | None, typer.Option(help="training epochs")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after this many steps")] = None,
    batch_size: Annotated[int | None, typer.Option(help="examples per step")] = None,
    dataset: Annotated[str | None, typer.Option(help="pair file or saved dataset (default: mine output)")] = None,
    level: Annotated[
        str | None,
        typer.Option(help="level of effort: prompts, adapter (query side only), static, top-layers, full"),
    ] = None,
    top_layers: Annotated[
        int | None, typer.Option(help="top-layers: layers trained from the top (0: chosen on dev)")
    ] = None,
    reranker: Annotated[str | None, typer.Option(help="cross-encoder teacher for margin-mse")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the last checkpoint")] = False,
    chunking: ChunkingOpt = None,
    force: Annotated[bool, typer.Option("--force", help="re-run even if inputs did not change")] = False,
    launcher: Annotated[
        str | None, typer.Option(help="train on several processes with DDP: torchrun or accelerate")
    ] = None,
    processes: Annotated[
        int | None, typer.Option(help="processes for --launcher (default: one per GPU, 1 without)")
    ] = None,
    budget: Annotated[
        str | None, typer.Option("--budget", help="cut the steps to fit this wall time: 30m, 1h, 90s")
    ] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a bi-encoder with the sentence-transformers trainer; keep the best dev checkpoint."""
    from domainfit.config import load_config
    from domainfit.stages.train import run_train
    from domainfit.stages.train_launch import check_launch_options, run_distributed

    set_quiet(quiet or as_json)
    check_launch_options(launcher, processes)
    if demo == (data is not None):
        fail(2, "give either a DATA folder or --demo")
    if demo:
        from domainfit.data.demo import demo_path

        data = demo_path()
    assert data is not None
    overrides = {
        "loss": loss,
        "base_model": base_model,
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "dataset": dataset,
        "level": level,
        "top_layers": top_layers,
    }
    cfg = load_config(config, {"train": overrides, "chunking": {"method": chunking}})
    if budget is not None:
        from domainfit.stages.train_budget import fit_train

        seconds = budget_seconds(budget)
        assert seconds is not None
        train_cfg, line = fit_train(
            data, Workspace(workspace), cfg.train, seconds, max_line_bytes=cfg.data.max_line_mib << 20, text=cfg.text
        )
        cfg = cfg.model_copy(update={"train": train_cfg})
        if not (quiet or as_json):
            typer.echo(line, err=True)
    if launcher is not None:
        result = run_distributed(
            data,
            Workspace(workspace),
            cfg.train,
            launcher=launcher,
            processes=processes,
            resume=resume,
            force=force,
            reranker=reranker,
            quiet=quiet or as_json,
            max_line_bytes=cfg.data.max_line_mib << 20,
            text=cfg.text,
            chunking=cfg.chunking,
        )
    else:
        result = run_train(
            data,
            Workspace(workspace),
            cfg.train,
            resume=resume,
            force=force,
            reranker=reranker,
            chunking=cfg.chunking,
            max_line_bytes=cfg.data.max_line_mib << 20,
            text=cfg.text,
        )
    if as_json:
        sys.stdout.write(json.dumps(asdict(result), indent=2) + "\n")
        return
    if result.up_to_date:
        typer.echo("train is up to date (inputs unchanged)")
    base = "-" if result.base_dev_ndcg10 is None else f"{result.base_dev_ndcg10:.4f}"
    best = "-" if result.best_dev_ndcg10 is None else f"{result.best_dev_ndcg10:.4f}"
    where = f" on {result.world_size} processes" if result.world_size > 1 else ""
    typer.echo(
        f"trained {result.steps} steps on {result.train_examples} examples ({result.training_source}) "
        f"in {result.seconds:.0f}s{where} (estimated {result.estimated_seconds:.0f}s); "
        f"dev NDCG@10 base {base} -> best {best} (step {result.best_step})"
    )
    if result.level != "full":
        typer.echo(f"level: {result.level} {json.dumps(result.level_details or {})[:300]}")
    typer.echo(f"model: {result.model_path}")


#: The function `domainfit.cli.app` registers as this stage's command.
command = train
