"""Markdown summary of a bench run (``<workspace>/bench/summary.md``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from domainfit.bench import BenchResult


def _p_values(result: BenchResult, metric: str) -> dict[str, str]:
    """``{system: "p (significant?)"}`` against the baseline on ``metric``."""
    out = {}
    for item in result.significance.get("comparisons", []):
        if item["metric"] == metric:
            out[item["system"]] = f"{item['p_value']:.3g}" + (" *" if item["significant"] else "")
    return out


def markdown_summary(result: BenchResult, primary: str, max_values: int = 12) -> str:
    """Render the systems table, the per-slice table of ``primary`` and the notes as Markdown."""
    metrics = list(result.systems[0].metrics) if result.systems else []
    baseline = result.significance.get("baseline", "bm25")
    test = result.significance.get("test_description", "")
    lines = [
        f"# Baselines on `{result.split}`",
        "",
        f"{result.n_queries} judged queries, {result.n_documents} documents.",
        "",
        "| system | " + " | ".join(metrics) + f" | p vs {baseline} ({primary}) |",
        "|---|" + "---:|" * (len(metrics) + 1),
    ]
    pvalues = _p_values(result, primary)
    for system in result.systems:
        cells = " | ".join(f"{system.metrics[m]:.4f}" for m in metrics)
        lines.append(f"| {system.name} | {cells} | {pvalues.get(system.name, '-')} |")
    lines += ["", f"\\* significant at alpha={result.significance.get('alpha', 0.05)} ({test}).", ""]
    names = [s.name for s in result.systems]
    lines += [f"## {primary} per slice", "", "| slice | n | " + " | ".join(names) + " |"]
    lines.append("|---|---:|" + "---:|" * len(names))
    first = result.slices.get(names[0], []) if names else []
    counts: dict[str, int] = {}
    for row in first:
        counts[row["slice"]] = counts.get(row["slice"], 0) + 1
    for index, row in enumerate(first):
        if row["slice"] != "all" and counts[row["slice"]] > max_values:
            continue
        row_cells: list[str] = []
        for name in names:
            score = result.slices[name][index]["scores"].get(primary)
            row_cells.append("-" if score is None else f"{score:.3f}")
        label = "all" if row["slice"] == "all" else f"{row['slice']}={row['value']}"
        lines.append(f"| {label} | {row['n_queries']} | " + " | ".join(row_cells) + " |")
    skipped = sorted(name for name, n in counts.items() if n > max_values)
    if skipped:
        lines += ["", f"Slices with more than {max_values} values ({', '.join(skipped)}) are in metrics.json."]
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"
