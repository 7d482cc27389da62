"""The ``summary.md`` of ``cost``: tiers for the corpus, projected sizes, assumptions."""

from __future__ import annotations

from domainfit.compress.cost import CostComparison, CostReport
from domainfit.render.compress import human_bytes


def usd(value: float) -> str:
    """Dollars with thousands separators, cents below $100, the sign in front (``-$20.14``)."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}" if abs(value) < 100 else f"{sign}${abs(value):,.0f}"


def hours(value: float) -> str:
    """Hours, or days when longer than two days."""
    return f"{value / 24:,.1f} days" if value > 48 else f"{value:,.2f} h"


def _comparison_row(c: CostComparison) -> str:
    """One projection row of the markdown table."""
    t, b = c.tiered, c.baseline
    return (
        f"| {c.vectors:,} | {human_bytes(b.storage_bytes)} | {human_bytes(t.storage_bytes)} | "
        f"{usd(b.total_usd_per_year)} | {usd(t.total_usd_per_year)} | {usd(c.saving_usd_per_year)} "
        f"({c.saving_share:.0%}) | {hours(t.reembed_wall_hours)} / {usd(t.reembed_usd_once)} |"
    )


def cost_markdown(report: CostReport) -> str:
    """Render the ``summary.md`` of a cost run: tiers for the corpus, projections, assumptions."""
    a = report.assumptions
    c = report.corpus
    lines = [
        f"# Cost of ownership: {report.model} ({report.model_dims} dimensions)",
        "",
        f"Embedding throughput: {report.docs_per_second:,.1f} documents/s ({report.throughput_source}). "
        f"Compute ${a['compute_usd_per_hour']}/hour, {a['queries_per_month']:,.0f} queries/month, "
        f"{a['reembeds_per_year']:g} re-embedding(s)/year on {a['embed_machines']} machine(s).",
        "",
        f"## {c.vectors:,} vectors, per tier",
        "",
        "| tier | dims | precision | vectors | bytes/vector | storage | $/GB-month | storage/year | "
        "queries/year | serving/year |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    tiers = a["tiers"]
    for t in [*c.tiered.tiers, *c.baseline.tiers]:
        price = tiers[t.name]["storage_usd_per_gb_month"] if t.name in tiers else "baseline"
        label = t.name if t.name in tiers else "one tier float32 (baseline)"
        lines.append(
            f"| {label} | {t.dims} | {t.precision} | {t.vectors:,} | {t.bytes_per_vector} | "
            f"{human_bytes(t.storage_bytes)} | {price} | {usd(t.storage_usd_per_year)} | "
            f"{t.queries_per_year:,.0f} | {usd(t.serving_usd_per_year)} |"
        )
    lines += [
        "",
        f"Yearly total: tiered {usd(c.tiered.total_usd_per_year)} vs one-tier float32 "
        f"{usd(c.baseline.total_usd_per_year)}: saving {usd(c.saving_usd_per_year)} ({c.saving_share:.1%}). "
        f"Re-embedding the corpus: {hours(c.tiered.reembed_wall_hours)}, {usd(c.tiered.reembed_usd_once)} each time.",
        "",
        "## Projected sizes",
        "",
        "| vectors | float32 storage | tiered storage | float32 $/year | tiered $/year | saving/year | "
        "re-embed (wall time / $) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *[_comparison_row(p) for p in report.projections],
        "",
        "Prices are the settings of `[cost]` (defaults are illustrative list prices): edit them in domainfit.toml.",
    ]
    if report.notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in report.notes]]
    return "\n".join(lines) + "\n"
