"""The ``monitor.md`` of the ``monitor`` stage: the latest verdict, its reasons, the canaries and the history plot."""

from __future__ import annotations

from typing import Any

from domainfit.monitor.history import MonitorRun


def _statistic_rows(verdict: dict[str, Any]) -> list[str]:
    """One table row per drift decision: value, threshold, adjusted p-value, alert."""
    rows = []
    for d in verdict.get("decisions", []):
        p = d.get("adjusted_p")
        rows.append(
            f"| `{d['name']}` | {d['value']:.4g} | {d['threshold']:.4g} | {'-' if p is None else f'{p:.3g}'} "
            f"| {'**alert**' if d['alert'] else 'ok'} |"
        )
    return rows


def monitor_markdown(run: MonitorRun, n_runs: int, plot: str | None) -> str:
    """Render the report section of monitoring: the latest run, its statistics and canaries, and the plot's link.

    Inputs: the latest run, how many runs the history holds and the plot's
    path relative to the report (None: no plot).
    """
    verdict = run.verdict
    lines = [
        "# Monitoring",
        "",
        f"Latest run {run.time}: **{run.status}** (exit {run.exit_code}) on version `{run.version}` "
        f"(model `{run.model}`, tag `{run.tag}`); {n_runs} run(s) in `history.jsonl`.",
        "",
    ]
    if verdict.get("reasons"):
        lines += ["Alerts:", "", *[f"- {r}" for r in verdict["reasons"]], ""]
    lines += [f"Query stream: {run.windows.get('described', 'not checked')}.", ""]
    rows = _statistic_rows(verdict)
    if rows:
        lines += ["| statistic | value | threshold | Holm p | |", "|---|---:|---:|---:|---|", *rows, ""]
    canary = verdict.get("canary")
    if canary:
        lines += ["| canary metric | value | baseline | floor | |", "|---|---:|---:|---:|---|"]
        for m in canary["metrics"]:
            lines.append(
                f"| {m['metric']} | {m['value']:.4f} | {m['baseline']:.4f} | {m['floor']:.4f} "
                f"| {'**alert**' if m['alert'] else 'ok'} |"
            )
        lines.append("")
        if canary.get("failed_queries"):
            lines += [f"Canary queries that lost every relevant document: {', '.join(canary['failed_queries'])}.", ""]
    if run.canary:
        lines += [f"Canaries: {run.canary.get('described', '')}.", ""]
    skipped = verdict.get("skipped") or {}
    if skipped:
        lines += ["Not checked: " + "; ".join(f"`{k}` ({v})" for k, v in sorted(skipped.items())) + ".", ""]
    lines += [f"- {note}" for note in run.notes]
    if run.notes:
        lines.append("")
    if plot:
        lines += [f"![monitoring over time]({plot})", ""]
    return "\n".join(lines)
