"""``domainfit train``: fine-tune the base model on the workspace's training data."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from domainfit.cli.options import ChunkingOpt, ConfigOpt, JsonOpt, QuietOpt, WorkspaceOpt, budget_seconds, resolve_data
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
        str | None,
        typer.Option("--budget", help="fit the training run in this wall time, as `run` plans it: 30m, 1h, 90s"),
    ] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a bi-encoder with the sentence-transformers trainer; keep the best dev checkpoint."""
    from domainfit.config import load_config
    from domainfit.stages.train import run_train
    from domainfit.stages.train_launch import check_launch_options, run_distributed

    check_launch_options(launcher, processes)
    data = resolve_data(data, demo, quiet or as_json)
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
    seconds = budget_seconds(budget)
    if seconds is not None:
        from domainfit.stages.plan import plan_lines
        from domainfit.stages.train_budget import plan_train

        plan, cfg = plan_train(data, Workspace(workspace), cfg, seconds, force=force)
        for line in plan_lines(plan) if not (quiet or as_json) else []:
            typer.echo(line, err=True)
    start = time.perf_counter()
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
    timing = None
    if seconds is not None:
        from domainfit.stages.train_budget import record_train

        status = "up to date" if result.up_to_date else "ran"
        timing = record_train(Workspace(workspace), status, time.perf_counter() - start)
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
    if timing is not None:
        typer.echo(timing)
    typer.echo(f"model: {result.model_path}")


#: The function `domainfit.cli.app` registers as this stage's command.
command = train
