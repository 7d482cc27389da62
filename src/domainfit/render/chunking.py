"""Render the chunking part of a bench result: chunked vs unchunked, and the size x overlap sweep.

Input: ``BenchResult.chunking`` (``{model label: entry}`` as written by
`domainfit.evaluation.chunk_bench.add_chunked_systems`). Output: Markdown lines for
``summary.md`` and rich tables for the terminal; the best sweep point is marked.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _rows(entry: dict[str, Any], primary: str) -> list[tuple[str, str, str, str, bool]]:
    """Return (setting, chunks, primary score, seconds, best) rows: unchunked first, then the sweep."""
    unchunked = entry.get("unchunked") or {}
    rows = [("unchunked", "-", f"{unchunked.get('metrics', {}).get(primary, float('nan')):.4f}", "-", False)]
    for point in entry.get("sweep", []):
        label = f"size {point['size']}, overlap {point['overlap']}" + (" (configured)" if point.get("main") else "")
        score = point["metrics"].get(primary, float("nan"))
        rows.append((label, str(point["n_chunks"]), f"{score:.4f}", f"{point['seconds']:.1f}", bool(point["best"])))
    return rows


def _heading(label: str, entry: dict[str, Any]) -> str:
    """Return the one-line description of a model's chunking."""
    trunc = entry.get("truncation") or {}
    over = f"{trunc.get('n_over', 0)} of {trunc.get('n_texts', 0)} documents exceed the window"
    return (
        f"{label}: method {entry.get('method')} -> {entry.get('resolved_method')}, "
        f"window {entry.get('window_tokens')} tokens, {over}"
    )


def chunking_lines(chunking: dict[str, dict[str, Any]], primary: str) -> list[str]:
    """Render the "Chunking" section of ``summary.md`` (empty when chunking was not configured)."""
    if not chunking:
        return []
    lines = ["", "## Chunking", ""]
    for label, entry in chunking.items():
        lines.append(f"- {_heading(label, entry)}")
        if entry.get("sweep"):
            lines += ["", f"| {label} | chunks | {primary} | seconds |", "|---|---:|---:|---:|"]
            for setting, n, score, seconds, best in _rows(entry, primary):
                mark = " **best**" if best else ""
                lines.append(f"| {setting}{mark} | {n} | {score} | {seconds} |")
            lines.append("")
    return lines


def chunking_tables(chunking: dict[str, dict[str, Any]], primary: str) -> list[Table]:
    """Return one terminal table per model with a sweep: unchunked, then each size x overlap, best in bold."""
    tables = []
    for label, entry in chunking.items():
        if not entry.get("sweep"):
            continue
        table = Table(title=f"Chunking ({_heading(label, entry)})")
        table.add_column("setting", no_wrap=True)
        table.add_column("chunks", justify="right")
        table.add_column(primary, justify="right")
        table.add_column("seconds", justify="right")
        for setting, n, score, seconds, best in _rows(entry, primary):
            if best:
                table.add_row(f"[bold]{setting} (best)[/bold]", n, f"[bold]{score}[/bold]", seconds)
            else:
                table.add_row(setting, n, score, seconds)
        tables.append(table)
    return tables
