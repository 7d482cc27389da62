"""Rich tables for the terminal: systems overall and per slice."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from domainfit.evaluation.results import BenchResult


def systems_table(result: BenchResult, primary: str) -> Table:
    """One row per system with every metric; the best value of each metric in bold."""
    metrics = list(result.systems[0].metrics) if result.systems else []
    table = Table(title=f"Baselines on '{result.split}' ({result.n_queries} queries, {result.n_documents} documents)")
    table.add_column("system", no_wrap=True)
    for metric in metrics:
        table.add_column(metric, justify="right", no_wrap=True)
    table.add_column(f"p vs bm25 ({primary})", justify="right")
    table.add_column("seconds", justify="right")
    best = {m: max(s.metrics[m] for s in result.systems) for m in metrics}
    pvalues = {c["system"]: c for c in result.significance.get("comparisons", []) if c["metric"] == primary}
    for system in result.systems:
        cells = [f"[bold]{v:.4f}[/bold]" if v == best[m] else f"{v:.4f}" for m, v in system.metrics.items()]
        comparison = pvalues.get(system.name)
        p = "-" if comparison is None else f"{comparison['p_value']:.3g}" + ("*" if comparison["significant"] else "")
        table.add_row(system.name, *cells, p, f"{system.seconds:.1f}")
    return table


def slices_table(result: BenchResult, metric: str, min_queries: int = 5, max_values: int = 12) -> Table:
    """Rows are slice values, columns are systems, cells the mean ``metric`` of that slice.

    Values with fewer than ``min_queries`` queries, and slices with more than
    ``max_values`` values (e.g. one per family), are left out of the terminal
    table; ``metrics.json`` holds them all.
    """
    names = [s.name for s in result.systems]
    table = Table(title=f"{metric} per slice")
    table.add_column("slice", no_wrap=True)
    table.add_column("n", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for name in names:
        for row in result.slices.get(name, []):
            key = (row["slice"], row["value"])
            entry = rows.setdefault(key, {"n": row["n_queries"]})
            entry[name] = row["scores"].get(metric)
    n_values: dict[str, int] = {}
    for slice_name, _ in rows:
        n_values[slice_name] = n_values.get(slice_name, 0) + 1
    for (slice_name, value), entry in rows.items():
        if slice_name != "all" and (entry["n"] < min_queries or n_values[slice_name] > max_values):
            continue
        scores = [entry.get(n) for n in names]
        top = max((s for s in scores if s is not None), default=None)
        cells = ["-" if s is None else (f"[bold]{s:.3f}[/bold]" if s == top else f"{s:.3f}") for s in scores]
        label = "all" if slice_name == "all" else f"{slice_name}={value}"
        table.add_row(label, str(entry["n"]), *cells)
    return table
