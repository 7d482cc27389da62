"""``domainfit decide``: is fine-tuning worth it (before), is the result worth shipping (after)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from domainfit.cli.options import ConfigOpt, JsonOpt, QuietOpt, WorkspaceOpt, resolve_data
from domainfit.core.workspace import DEFAULT_WORKSPACE, Workspace


def decide(
    data: Annotated[Path | None, typer.Argument(help="BEIR folder (counts training pairs, probes cost)")] = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="use the bundled demo corpus")] = False,
    when: Annotated[str, typer.Option(help="auto, before (from bench) or after (from eval)")] = "auto",
    target: Annotated[float | None, typer.Option(help="quality you need (absolute NDCG@10)")] = None,
    min_lift: Annotated[float | None, typer.Option(help="smallest lift worth shipping")] = None,
    usd_per_hour: Annotated[float | None, typer.Option(help="compute price of this machine")] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Recommend keep / hybrid / generate data / fine-tune, or ship / do not ship, with reasons."""
    from domainfit.config import load_config
    from domainfit.evaluation.decision import costed_as_trained
    from domainfit.render.decision import render
    from domainfit.stages.decide import run_decide

    data = resolve_data(data, demo, quiet or as_json)
    cfg = load_config(config, {"decide": {"target": target, "min_lift": min_lift, "usd_per_hour": usd_per_hour}})
    decision = run_decide(
        data,
        Workspace(workspace),
        costed_as_trained(cfg.decide, cfg.train),
        when,
        max_line_bytes=cfg.data.max_line_mib << 20,
        text=cfg.text,
        train=cfg.train,
    )
    if as_json:
        sys.stdout.write(json.dumps(decision.to_json(), indent=2) + "\n")
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(render(decision)))


#: The function `domainfit.cli.app` registers as this stage's command.
command = decide
