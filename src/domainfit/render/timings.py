"""The report's "Time: plan against actual" section, from ``<workspace>/plan/timings.json``."""

from __future__ import annotations

from typing import Any

from domainfit.budget.duration import format_minutes


def timing_rows(timings: dict[str, Any]) -> list[dict[str, str]]:
    """Rows of the table: stage, status, estimate, actual and actual/estimate, as display strings."""
    rows = []
    for entry in timings.get("stages", []):
        estimate = entry.get("estimate")
        ratio = entry.get("ratio")
        rows.append(
            {
                "stage": entry["stage"],
                "status": entry["status"],
                "estimate": format_minutes(estimate) if estimate is not None else "-",
                "actual": format_minutes(entry["seconds"]),
                "ratio": f"{ratio:.2f}" if ratio is not None else "-",
            }
        )
    return rows


def timing_summary(timings: dict[str, Any]) -> str:
    """One sentence: the whole run's estimate and actual time, and its budget when one was set."""
    budget = timings.get("budget_seconds")
    text = (
        f"The run took {format_minutes(timings['seconds'])} against a first estimate of "
        f"{format_minutes(timings['estimate_seconds'])}"
    )
    if budget:
        text += f" and a budget of {format_minutes(budget)} ({timings['seconds'] / budget:.0%} of it used)"
    return text + "."


def timings_markdown(timings: dict[str, Any]) -> str:
    """Render the section as Markdown (a table of every stage that ran)."""
    lines = ["# Time: plan against actual", "", timing_summary(timings), ""]
    lines += ["| stage | status | estimate | actual | actual / estimate |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['stage']} | {r['status']} | {r['estimate']} | {r['actual']} | {r['ratio']} |"
              for r in timing_rows(timings)]  # fmt: skip
    return "\n".join(lines) + "\n"
