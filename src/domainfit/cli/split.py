"""``domainfit split``: re-split judged queries so that no query family crosses splits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from domainfit.cli.errors import fail


def split(
    data: Annotated[Path, typer.Argument(help="BEIR folder whose judged queries are re-split")],
    out: Annotated[Path, typer.Option("--out", "-o", help="new BEIR folder to write (must not be DATA)")],
    ratios: Annotated[tuple[float, float, float], typer.Option(help="train dev test shares")] = (0.7, 0.1, 0.2),
    seed: Annotated[int, typer.Option(help="random seed (same seed, same split)")] = 13,
    overlap: Annotated[float, typer.Option(help="token Jaccard above which queries are one family")] = 0.8,
) -> None:
    """Split judged queries into train/dev/test so that no query family crosses splits."""
    from domainfit.core.workspace import check_output_folder
    from domainfit.data.beir import load_beir, write_beir
    from domainfit.data.resplit import resplit

    check_output_folder(out, data)  # never the data, inside or above it, nor a non-empty folder
    dataset = load_beir(data)
    if not dataset.qrels:
        fail(2, f"{data}/qrels: -: no qrels to split")
    if abs(sum(ratios) - 1.0) > 1e-6 or min(ratios) < 0:
        fail(2, f"--ratios must be non-negative and sum to 1, got {ratios}")
    new, summary = resplit(dataset, ratios=ratios, seed=seed, overlap_threshold=overlap)
    check_output_folder(out, data)  # checked again just before writing
    write_beir(new, out)
    for leak in summary.previous_leaks[:10]:
        typer.echo(f"fixed leak: family {leak.family!r} was in {' and '.join(leak.splits)}", err=True)
    parts = ", ".join(
        f"{s}={summary.queries_per_split[s]} queries/{summary.families_per_split[s]} families"
        for s in summary.queries_per_split
    )
    typer.echo(f"wrote {out}: {parts}")
