"""The report section of a migration (``migrate.md``): the log, the plan, the bridge, the last comparison and gate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _cell(value: Any) -> str:
    """Format a table cell: floats to 4 decimals, None as a dash, pipes escaped."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "/")


def _log_table(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per log entry: when, step, versions, what was done."""
    rows = ["| time | step | from | to | what was done |", "|---|---|---|---|---|"]
    rows += [
        f"| {e.get('time')} | {e.get('step')} | `{e.get('from_version')}` | `{e.get('to_version')}` | "
        f"{_cell(e.get('summary'))} |"
        for e in entries
    ]
    return rows


def _plan_lines(plan: Mapping[str, Any]) -> list[str]:
    """Render the plan in a few sentences."""
    old, new, bridge = plan["old"], plan["new"], plan["bridge"]
    return [
        "## Plan",
        "",
        f"From `{old['version']}` ({old['model']}, {old['dimension']} dims) to `{new['version']}` "
        f"({new['model']}, {new['dimension']} dims): {plan['to_embed']} of {plan['documents']} documents to embed "
        f"({plan['already_embedded']} already embedded), about {plan['estimated_seconds']:.1f} s at "
        f"{plan['docs_per_second']:.1f} documents/s ({plan['throughput_source']}); "
        f"{plan['new_vector_bytes']} bytes of new vectors, re-embedding ${plan['reembed_usd']:.4f} once, "
        f"storage ${plan['storage_usd_per_year']:.4f} a year.",
        "",
        f"Query-side bridge: {'possible' if bridge['possible'] else 'not possible'} ({bridge['reason']}).",
        "",
        *[f"- {note}" for note in plan.get("notes", [])],
    ]


def _bridge_lines(bridge: Mapping[str, Any]) -> list[str]:
    """Retention of each map kind and the gate's verdict on the chosen one."""
    rows = [
        "## Bridge",
        "",
        f"Fitted on {bridge['pairs']} texts embedded by both models ({bridge['train_pairs']} to fit, "
        f"{bridge['dev_pairs']} to choose); measured on the {bridge['queries']} judged `{bridge['split']}` queries.",
        "",
        "| map | bridged | full re-embed | old model | retention |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, found in bridge["kinds"].items():
        r = found["retention"]
        chosen = " (chosen)" if kind == bridge["chosen"] else ""
        rows.append(
            f"| {kind}{chosen} | {_cell(r['bridged'])} | {_cell(r['full'])} | {_cell(r['old'])} | "
            f"{_cell(r['retention'])} |"
        )
    gate = bridge["gate"]
    why = f" ({'; '.join(gate['reasons'])})" if gate["reasons"] else ""
    rows += ["", f"Gate: **{'go' if gate['go'] else 'no-go'}**{why}"]
    return rows


def _compare_lines(comparison: Mapping[str, Any], gate: Mapping[str, Any] | None) -> list[str]:
    """Render the slice table, the agreement, the thresholds, the queries that changed most and the gate."""
    rows = ["## Last comparison", ""]
    if gate is not None:
        rows += [f"Gate: **{'go' if gate['go'] else 'no-go'}**", ""]
        rows += [f"- {'ok' if c['passed'] else 'FAILED'}: {c['reason']}" for c in gate["checks"]]
        rows.append("")
    rows += ["| slice | value | metric | queries | old | new | delta | p |", "|---|---|---|---:|---:|---:|---:|---:|"]
    rows += [
        f"| {s['slice']} | {_cell(s['value'])} | {s['metric']} | {s['n_queries']} | {_cell(s['old'])} | "
        f"{_cell(s['new'])} | {s['delta']:+.4f} | {_cell(s['p_value'])} |"
        for s in comparison["slices"]
    ]
    a, k = comparison["agreement"], comparison["k"]
    rows += [
        "",
        f"Agreement over {a['n_queries']} queries: overlap@{k} {_cell(a['overlap'])}, Jaccard@{k} "
        f"{_cell(a['jaccard'])}, top-1 {_cell(a['top1_agreement'])}.",
    ]
    canary = comparison.get("canary_agreement")
    if canary:
        rows.append(
            f"Canaries ({canary['n_queries']}): Jaccard@{k} {_cell(canary['jaccard'])}, churn {_cell(canary['churn'])}."
        )
    rows.append(
        f"Calibrated thresholds: old {_cell(comparison.get('old_threshold'))}, new "
        f"{_cell(comparison.get('new_threshold'))}."
    )
    changed = comparison.get("changed_most") or []
    if changed:
        rows += [
            "",
            "Queries that changed most:",
            "",
            f"| query | Jaccard@{k} | top-1 same | old | new |",
            "|---|---:|---|---:|---:|",
        ]
        rows += [
            f"| `{c['query_id']}` | {_cell(c['jaccard'])} | {'yes' if c['top1_same'] else 'no'} | "
            f"{_cell(c['old_metric'])} | {_cell(c['new_metric'])} |"
            for c in changed
        ]
    return rows


def migrate_markdown(
    entries: Sequence[Mapping[str, Any]],
    *,
    plan: Mapping[str, Any] | None,
    bridge: Mapping[str, Any] | None,
    comparison: Mapping[str, Any] | None,
    gate: Mapping[str, Any] | None,
    settings: Mapping[str, Any],
    version: str,
) -> str:
    """Render the migration section: the log (every step, when, with which numbers), then the latest results."""
    lines = ["# Model migration", ""]
    if not entries:
        lines += ["No migration step has run in this workspace yet (`domainfit migrate plan`).", ""]
    else:
        last = entries[-1]
        lines += [
            f"{len(entries)} steps recorded in `migrate/log.jsonl`; the last: `{last.get('step')}` at "
            f"{last.get('time')}.",
            "",
            *_log_table(entries),
            "",
        ]
    if plan:
        lines += [*_plan_lines(plan), ""]
    if bridge:
        lines += [*_bridge_lines(bridge), ""]
    if comparison:
        lines += [*_compare_lines(comparison, gate), ""]
    lines += [
        f"Gate limits: min_lift {settings.get('min_lift')}, max_slice_drop {settings.get('max_slice_drop')}, "
        f"max_canary_churn {settings.get('max_canary_churn')}, min_bridge_retention "
        f"{settings.get('min_bridge_retention')} (domainfit {version})."
    ]
    return "\n".join(lines) + "\n"
