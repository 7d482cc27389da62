"""``domainfit validate``: check a BEIR folder or a pair file, or name its first problem (exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from domainfit.cli.errors import fail


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
        from domainfit.data.judged import check_evaluated_split
        from domainfit.data.splits import check_qrels_leakage

        dataset = load_beir(data)
        for name in split or []:
            check_evaluated_split(dataset, name, data / "qrels")
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
    pairs = read_pairs(data)
    typer.echo(f"ok: {len(pairs)} pairs")
