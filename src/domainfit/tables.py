"""Rich tables for the terminal: systems overall and per slice."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from domainfit.bench import BenchResult


def systems_table(result: BenchResult, primary: str) -> Table:
    """One row per system with every metric; the best value of each metric in bold."""
    metrics = list(result.systems[0].metrics) if result.systems else []
    table = Table(title=f"Baselines on '{result.split}' ({result.n_queries} queries, {result.n_documents} documents)")
    table.add_column("system")
    for metric in metrics:
        table.add_column(metric, justify="right")
    table.add_column(f"p vs bm25 ({primary})", justify="right")
    table.add_column("seconds", justify="right")
    best = {m: max(s.metrics[m] for s in result.systems) for m in metrics}
    pvalues = result.significance.get("vs_baseline", {})
    for system in result.systems:
        cells = [f"[bold]{v:.4f}[/bold]" if v == best[m] else f"{v:.4f}" for m, v in system.metrics.items()]
        p = pvalues.get(system.name, {}).get(primary, {}).get("p_value")
        table.add_row(system.name, *cells, "-" if p is None else f"{p:.3g}", f"{system.seconds:.1f}")
    return table


def slices_table(result: BenchResult, metric: str, min_queries: int = 5) -> Table:
    """Rows are slice values, columns are systems, cells the mean ``metric`` of that slice."""
    names = [s.name for s in result.systems]
    table = Table(title=f"{metric} per slice")
    table.add_column("slice")
    table.add_column("n", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for name in names:
        for row in result.slices.get(name, []):
            key = (row["slice"], row["value"])
            entry = rows.setdefault(key, {"n": row["n_queries"]})
            entry[name] = row["scores"].get(metric)
    for (slice_name, value), entry in sorted(rows.items()):
        if entry["n"] < min_queries and slice_name != "all":
            continue
        scores = [entry.get(n) for n in names]
        top = max((s for s in scores if s is not None), default=None)
        cells = ["-" if s is None else (f"[bold]{s:.3f}[/bold]" if s == top else f"{s:.3f}") for s in scores]
        table.add_row(f"{slice_name}={value}", str(entry["n"]), *cells)
    return table
