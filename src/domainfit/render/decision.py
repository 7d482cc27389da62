"""A decision as Markdown (``decide/decision-<when>.md`` and the terminal)."""

from __future__ import annotations

from typing import Any

from domainfit.evaluation.decision import Decision


def render(decision: Decision) -> str:
    """Render a decision as Markdown: the recommendation, then its reasons."""
    title = "Before training" if decision.when == "before" else "After training"
    lines = [f"# {title}: {decision.recommendation}", ""] + [f"- {reason}" for reason in decision.reasons]
    if decision.levels:
        lines += ["", *levels_lines(decision.levels)]
    return "\n".join(lines) + "\n"


def levels_lines(levels: dict[str, Any]) -> list[str]:
    """Render the levels of effort: estimated time on this machine, expected lift (prior or measured), the choice."""
    lines = [
        "## Levels of effort",
        "",
        f"Lift needed: {levels['needed_lift']:+.4f} ({levels['needed_because']}).",
        "",
        "| level | train (min) | re-index (min) | total (min) | expected lift | lift is | docs re-embedded | note |",
        "|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for e in levels["estimates"]:
        mark = " **(recommended)**" if e["level"] == levels["recommended"] else ""
        lines.append(
            f"| {e['number']} {e['level']}{mark} | {e['train_seconds'] / 60:.1f} | {e['reindex_seconds'] / 60:.1f} "
            f"| {e['total_seconds'] / 60:.1f} | {e['expected_lift']:+.4f} | {e['lift_basis']} "
            f"| {e['documents_reembedded']} | {e['note']} |"
        )
    lines += [
        "",
        f"Recommendation: {levels['reason']}.",
        "",
        f"Time: measured ({levels['time_basis']}). Expected lift: {levels['lift_basis']}.",
    ]
    return lines
