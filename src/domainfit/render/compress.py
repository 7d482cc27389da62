"""Human-readable output of the compress stage: ``summary.md``, highlights and the terminal table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from domainfit.compress.sweep import VariantResult

if TYPE_CHECKING:
    from rich.table import Table

    from domainfit.compress.results import CompressResult

_UNITS = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"))


def human_bytes(n: float) -> str:
    """Format a byte count with decimal units (1 GB = 1e9 bytes), three significant digits."""
    for scale, unit in _UNITS:
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _ret(variant: VariantResult, metric: str) -> str:
    """Retention of a metric as a percentage, or '-'."""
    value = variant.retention.get(metric)
    return "-" if value is None else f"{value:.1%}"


def _bytes_cell(variant: VariantResult) -> str:
    """Bytes per vector, with the rescoring copy's bytes when rescored."""
    text = f"{variant.bytes_per_vector:g}"
    if variant.rescore_bytes_per_vector:
        text += f" (+{variant.rescore_bytes_per_vector:g})"
    return text


def highlights(result: CompressResult) -> list[str]:
    """Sentences on the results a reader looks for first: int8, binary and binary with rescoring at full width."""
    primary = result.primary_metric
    full = f"trunc-{result.full_dim}"
    by_name = {v.name: v for v in result.variants}
    lines = []
    for v in result.variants:
        if not v.name.startswith(f"{full}/") or v.store not in ("int8", "binary"):
            continue
        tail = (
            f", rescoring {v.oversample}x the depth in candidates with {'an' if v.rescore == 'int8' else 'a'} "
            f"{v.rescore} copy "
            f"(+{v.rescore_bytes_per_vector:g} bytes/vector, read for the candidates only)"
            if v.rescore
            else ""
        )
        lines.append(
            f"{v.name}: keeps {_ret(v, primary)} of float32 {primary} ({v.metrics[primary]:.4f}) "
            f"at 1/{v.compression_ratio:g} of the bytes in memory{tail}"
        )
    smallest = min((v.dim for v in result.variants), default=0)
    trunc, pca = by_name.get(f"trunc-{smallest}/float32"), by_name.get(f"pca-{smallest}/float32")
    if trunc and pca and smallest < result.full_dim:
        lines.append(
            f"at {smallest} dimensions, truncation keeps {_ret(trunc, primary)} and PCA {_ret(pca, primary)} "
            f"of {primary}"
        )
    return lines


def summary_markdown(result: CompressResult) -> str:
    """Render the ``summary.md`` of a compress run: operating point, highlights, every configuration, notes."""
    lat = result.latency_metric
    metrics = list(result.variants[0].metrics) if result.variants else []
    op = result.operating_point
    lines = [
        f"# Compression sweep: {result.model}",
        "",
        f"Split '{result.split}': {result.n_queries} queries, {result.n_documents} documents, "
        f"{result.full_dim} dimensions. Reference: `{result.reference}` "
        + ", ".join(f"{m} {result.variants[0].metrics[m]:.4f}" for m in metrics)
        + ".",
        "",
        "## Operating point",
        "",
        f"- rule: {op['rule']}; constraints: "
        + ", ".join(f"{k} = {v}" for k, v in op["constraints"].items() if v is not None),
        f"- {op['reason']}" if op["name"] else f"- none: {op['reason']}",
        "",
        "## Highlights",
        "",
        *[f"- {line}" for line in highlights(result)],
        "",
        "## Every configuration",
        "",
        "Bytes are per vector in memory; `(+n)` is the rescoring copy read for candidates only. "
        "`P` marks the Pareto frontier (quality, bytes, latency). Latency in ms per query.",
        "",
        "| configuration | P | "
        + " | ".join(f"{m} | ret." for m in metrics)
        + f" | bytes/vec | ratio | index (corpus) | 1B vectors | single p50 | {lat} | batch p50 | build s |",
        "|---|---|" + "---:|---:|" * len(metrics) + "---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    largest = str(max(int(n) for n in result.variants[0].projected_bytes)) if result.variants else ""
    for v in result.variants:
        cells = " | ".join(f"{v.metrics[m]:.4f} | {_ret(v, m)}" for m in metrics)
        lines.append(
            f"| `{v.name}` | {'P' if v.pareto else ''} | {cells} | {_bytes_cell(v)} | {v.compression_ratio:g}x | "
            f"{human_bytes(v.index_bytes)} | {human_bytes(v.projected_bytes.get(largest, 0))} | "
            f"{v.latency['single_p50_ms']:.3f} | {v.latency[lat]:.3f} | {v.latency['batch_p50_ms']:.3f} | "
            f"{v.build_seconds:.3f} |"
        )
    if largest and largest != "1000000000":
        lines.append(f"\n(The '1B vectors' column is the projection for {int(largest):,} vectors.)")
    if result.notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in result.notes]]
    lines += ["", "Frontier plot: `frontier.png`. Every number: `results.json`.", ""]
    return "\n".join(lines)


def variants_table(variants: Sequence[VariantResult], primary: str, latency_metric: str, chosen: str | None) -> Table:
    """Build a rich table of every configuration; frontier rows marked, the operating point in bold."""
    from rich.table import Table

    secondary = [m for m in (variants[0].metrics if variants else {}) if m != primary][:1]
    table = Table(title=f"Compression sweep ({len(variants)} configurations; P = Pareto frontier)")
    table.add_column("configuration", no_wrap=True)
    table.add_column("P", justify="center")
    table.add_column(primary, justify="right")
    table.add_column("ret.", justify="right")
    for metric in secondary:
        table.add_column(f"{metric} ret.", justify="right")
    table.add_column("bytes/vec", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("1B vec", justify="right")
    table.add_column(f"{latency_metric.replace('_ms', '')} ms", justify="right")
    for v in variants:
        projected = max(v.projected_bytes.items(), key=lambda kv: int(kv[0]))[1] if v.projected_bytes else 0
        cells = [
            v.name,
            "P" if v.pareto else "",
            f"{v.metrics[primary]:.4f}",
            _ret(v, primary),
            *[_ret(v, m) for m in secondary],
            _bytes_cell(v),
            f"{v.compression_ratio:g}x",
            human_bytes(projected),
            f"{v.latency[latency_metric]:.3f}",
        ]
        style = "bold green" if v.name == chosen else ("" if v.pareto else "dim")
        table.add_row(*cells, style=style)
    return table
