"""Markdown summary of a bench run (``<workspace>/bench/summary.md``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domainfit.render.chunking import chunking_lines

if TYPE_CHECKING:
    from domainfit.evaluation.results import BenchResult


def _p_values(result: BenchResult, metric: str) -> dict[str, str]:
    """``{system: "p (significant?)"}`` against the baseline on ``metric``."""
    out = {}
    for item in result.significance.get("comparisons", []):
        if item["metric"] == metric:
            out[item["system"]] = f"{item['p_value']:.3g}" + (" *" if item["significant"] else "")
    return out


def similarity_verdicts(result: BenchResult) -> list[str]:
    """One sentence per domain-specific similarity system: its score vs plain dense and whether it helped."""
    entries = getattr(result, "similarity", None) or {}
    if not entries:
        return []
    from domainfit.evaluation.similarity import summary_line

    return [summary_line(entry) for entry in entries.values()]


def similarity_lines(result: BenchResult) -> list[str]:
    """Render the "Domain-specific similarity" Markdown section (empty when no similarity system ran)."""
    verdicts = similarity_verdicts(result)
    if not verdicts:
        return []
    return ["", "## Domain-specific similarity vs plain dense", ""] + [f"- {line}" for line in verdicts]


def _counts(counts: dict[str, int]) -> str:
    """Render ``{language: n}`` as ``en 120, de 14, und 3``."""
    return ", ".join(f"{lang} {n}" for lang, n in counts.items()) or "none"


def language_lines(result: BenchResult) -> list[str]:
    """Render the "Languages" section: languages of documents and queries, cross-language queries, normalisation."""
    info = getattr(result, "languages", None) or {}
    if not info:
        return []
    seen = info.get("documents_seen", 0)
    total = info.get("documents_total", 0)
    sampled = f" ({seen} of {total} read)" if seen != total else ""
    lines = [
        "",
        "## Languages",
        "",
        f"- documents{sampled}: {_counts(info.get('documents', {}))}",
        f"- judged queries: {_counts(info.get('queries', {}))}",
        "- cross-language queries (language not that of any relevant document): "
        f"{info.get('cross_language_queries', 0)}",
        f"- language slices: {'yes' if info.get('slices') else 'no'}; text normalisation: "
        f"`{info.get('text_normalization', '-')}`; detector: {info.get('detector', {}).get('detector', '-')}",
    ]
    return lines


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
    lines += similarity_lines(result)
    lines += language_lines(result)
    lines += chunking_lines(getattr(result, "chunking", None) or {}, primary)
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"
