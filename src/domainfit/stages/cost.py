"""The ``cost`` stage: price the corpus (and projected sizes) with tiers, write ``<workspace>/cost/``.

Input: optionally a BEIR folder (its corpus size is the number of vectors and
its documents feed the throughput probe), a workspace and a `CostConfig`.
Output files: ``cost.json`` (every number and assumption), ``summary.md`` and
``manifest.json``, written together.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from domainfit.compress.config import CostConfig
from domainfit.compress.cost import CostComparison, CostReport, cost_report
from domainfit.core.errors import InputError, UsageError
from domainfit.core.files import atomic_write_json, atomic_write_text, staged_dir
from domainfit.core.workspace import Workspace
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.render.compress import human_bytes
from domainfit.text.config import DEFAULT_TEXT, TextConfig

STAGE = "cost"


def _tier_line(path: Path | None, tier: str) -> int:
    """Line of ``dims`` in ``[cost.tiers.<tier>]`` of the config file (0 when not found)."""
    if path is None or not path.is_file():
        return 0
    inside = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            inside = header.group(1).strip() == f"cost.tiers.{tier}"
        elif inside and re.match(r"^\s*dims\s*=", line):
            return number
    return 0


def fit_tiers(config: CostConfig, model_dims: int, config_path: Path | None) -> tuple[CostConfig, list[str]]:
    """Check tier widths against the model: an error for tiers the user set, narrowed with a note for defaults."""
    notes: list[str] = []
    tiers = dict(config.tiers)
    for name, tier in config.tiers.items():
        if tier.dims is None or tier.dims <= model_dims:
            continue
        if "tiers" in config.model_fields_set:
            raise InputError(
                config_path or "<options>",
                _tier_line(config_path, name),
                f"cost.tiers.{name}.dims",
                f"{tier.dims} exceeds the model's {model_dims} dimensions",
            )
        tiers[name] = tier.model_copy(update={"dims": model_dims})
        notes.append(
            f"default tier '{name}' keeps {tier.dims} dimensions, more than the model's {model_dims}: used all"
        )
    return config.model_copy(update={"tiers": tiers}), notes


def _probe_texts(data: Path | None, count: int, max_line_bytes: int, text: TextConfig) -> list[str]:
    """Sample ``count`` documents of DATA (or of the demo corpus), seeded."""
    from domainfit.data.beir import read_corpus
    from domainfit.data.demo import demo_path

    root = data if data is not None else demo_path()
    corpus = read_corpus(root / "corpus.jsonl", max_line_bytes, text)
    texts = [doc.full_text() for doc in corpus.values()]
    return random.Random(13).sample(texts, min(count, len(texts)))


def run_cost(
    data: Path | None,
    workspace: Workspace,
    config: CostConfig,
    *,
    config_path: Path | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_seq_length: int | None = 256,
    text: TextConfig = DEFAULT_TEXT,
) -> CostReport:
    """Price the index and write the cost artifacts.

    Inputs: a BEIR folder or None (then ``config.vectors`` is required and the
    probe reads the demo corpus), the workspace, the config and its file (for
    error lines). Output: the `CostReport`. Raises `UsageError` when the number
    of vectors is unknown and `InputError` for a tier wider than the model.
    """
    from domainfit.core.models import load_bi_encoder

    root = Path(data).expanduser().resolve() if data is not None else None
    if root is not None:
        workspace.attach_data(root)  # a workspace inside, above or equal to the data is refused
    if root is not None and not (root / "corpus.jsonl").is_file():
        raise InputError(root, 0, "-", "not a BEIR folder (no corpus.jsonl)")
    vectors = config.vectors
    if vectors is None and root is None:
        raise UsageError("the number of vectors is unknown: give a DATA folder, --demo or --vectors")
    if root is not None:  # the corpus is read (and checked) before the model loads
        from domainfit.data.beir import read_corpus

        n_docs = len(read_corpus(root / "corpus.jsonl", max_line_bytes, text))
        vectors = n_docs if vectors is None else vectors
    assert vectors is not None
    model = load_bi_encoder(config.model, max_seq_length=max_seq_length)
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dims = int(get_dim() or 0)
    config, notes = fit_tiers(config, dims, config_path)
    if config.embed_docs_per_second is not None:
        rate, source = config.embed_docs_per_second, "given (cost.embed_docs_per_second)"
    else:
        from domainfit.compress.probe import measure_throughput
        from domainfit.core.progress import progress_bar

        texts = _probe_texts(root, config.probe_documents, max_line_bytes, text)
        with progress_bar("probing embedding throughput", len(texts)) as advance:
            probe = measure_throughput(model, texts)
            advance(len(texts))
        rate = probe.docs_per_second
        source = f"measured on this machine: {probe.documents} documents in {probe.seconds:.2f} s"
    report = cost_report(
        config,
        vectors=vectors,
        model=config.model,
        model_dims=dims,
        docs_per_second=rate,
        throughput_source=source,
        notes=notes,
    )
    out_dir = workspace.stage_dir(STAGE)
    with workspace.lock(), staged_dir(out_dir) as tmp:
        atomic_write_json(tmp / "cost.json", report.to_json())
        atomic_write_text(tmp / "summary.md", cost_markdown(report))
        workspace.write_manifest(
            tmp,
            STAGE,
            {"data": str(root) if root else None, "config": config.model_dump(), "docs_per_second": rate},
            ["cost.json", "summary.md"],
        )
    return report


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
