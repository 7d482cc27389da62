"""Cost of ownership of an embedding index: storage tiers, re-embedding and query serving.

Every unit price is an explicit, editable setting of ``[cost]`` in
``domainfit.toml``; the defaults are illustrative list prices, not quotes.
Sizes use decimal units (1 GB = 1e9 bytes; 1 TB = 1e12 bytes).

The model, for ``N`` vectors of a ``D``-dimensional model:

* storage: each tier holds ``N × vector_share`` vectors at its own dimension
  and precision, times its replicas; bytes × $/GB-month × 12 per year;
* re-embedding: ``N / docs_per_second`` seconds of one machine, at
  ``compute_usd_per_hour``, ``reembeds_per_year`` times a year (wall-clock time
  divides by ``embed_machines``; the bill does not);
* serving: ``queries_per_month × 12 × query_share`` queries per tier, each
  costing ``query_cpu_ms`` of machine time at ``compute_usd_per_hour``.

The baseline is one tier: every vector at float32 and full dimension, priced
and served like the first tier. Worked example (a test checks it): 100e9
vectors × 768 dimensions × 4 bytes = 307.2 TB as float32; 153.6 TB as float16;
76.8 TB as int8; 9.6 TB as binary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from domainfit.compress.config import CostConfig, TierConfig
from domainfit.compress.quantize import vector_bytes

MONTHS_PER_YEAR = 12
GB = 1e9


@dataclass
class TierCost:
    """One tier's yearly storage and serving cost for a given number of vectors."""

    name: str
    dims: int
    precision: str
    vectors: int
    bytes_per_vector: int
    replicas: int
    storage_bytes: int
    storage_usd_per_month: float
    storage_usd_per_year: float
    queries_per_year: float
    serving_hours_per_year: float
    serving_usd_per_year: float


@dataclass
class CostBreakdown:
    """Yearly cost of one layout (tiered or baseline) for ``vectors`` vectors."""

    vectors: int
    tiers: list[TierCost]
    storage_bytes: int
    storage_usd_per_year: float
    reembed_machine_hours: float
    reembed_wall_hours: float
    reembed_usd_once: float
    reembed_usd_per_year: float
    serving_usd_per_year: float
    total_usd_per_year: float

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CostBreakdown:
        """Rebuild a breakdown from its plain-dict form."""
        return cls(**{**data, "tiers": [TierCost(**t) for t in data["tiers"]]})


def storage_bytes(vectors: int, dims: int, precision: str) -> int:
    """Exact bytes of ``vectors`` vectors of ``dims`` dimensions at ``precision`` (integer arithmetic)."""
    return int(vectors) * vector_bytes(dims, precision)


def tier_cost(name: str, tier: TierConfig, vectors: int, model_dims: int, config: CostConfig) -> TierCost:
    """Storage and serving of one tier for ``vectors`` vectors in total (the tier holds its share)."""
    dims = tier.dims or model_dims
    held = round(vectors * tier.vector_share)
    per_vector = vector_bytes(dims, tier.precision)
    total_bytes = held * per_vector * tier.replicas
    monthly = total_bytes / GB * tier.storage_usd_per_gb_month
    queries = config.queries_per_month * MONTHS_PER_YEAR * tier.query_share
    hours = queries * tier.query_cpu_ms / 1000 / 3600
    return TierCost(
        name=name,
        dims=dims,
        precision=tier.precision,
        vectors=held,
        bytes_per_vector=per_vector,
        replicas=tier.replicas,
        storage_bytes=total_bytes,
        storage_usd_per_month=monthly,
        storage_usd_per_year=monthly * MONTHS_PER_YEAR,
        queries_per_year=queries,
        serving_hours_per_year=hours,
        serving_usd_per_year=hours * config.compute_usd_per_hour,
    )


def _breakdown(vectors: int, tiers: list[TierCost], config: CostConfig, docs_per_second: float) -> CostBreakdown:
    """Sum tiers and add re-embedding."""
    machine_hours = vectors / docs_per_second / 3600
    once = machine_hours * config.compute_usd_per_hour
    storage = sum(t.storage_usd_per_year for t in tiers)
    serving = sum(t.serving_usd_per_year for t in tiers)
    return CostBreakdown(
        vectors=vectors,
        tiers=tiers,
        storage_bytes=sum(t.storage_bytes for t in tiers),
        storage_usd_per_year=storage,
        reembed_machine_hours=machine_hours,
        reembed_wall_hours=machine_hours / config.embed_machines,
        reembed_usd_once=once,
        reembed_usd_per_year=once * config.reembeds_per_year,
        serving_usd_per_year=serving,
        total_usd_per_year=storage + once * config.reembeds_per_year + serving,
    )


def tiered_cost(vectors: int, config: CostConfig, model_dims: int, docs_per_second: float) -> CostBreakdown:
    """Yearly cost with the configured tiers."""
    tiers = [tier_cost(name, tier, vectors, model_dims, config) for name, tier in config.tiers.items()]
    return _breakdown(vectors, tiers, config, docs_per_second)


def baseline_tier(config: CostConfig) -> TierConfig:
    """Return the one-tier float32 layout savings are measured against (priced and served like the first tier)."""
    first = next(iter(config.tiers.values()))
    return TierConfig(
        dims=None,
        precision="float32",
        vector_share=1.0,
        query_share=1.0,
        storage_usd_per_gb_month=(
            first.storage_usd_per_gb_month
            if config.baseline_storage_usd_per_gb_month is None
            else config.baseline_storage_usd_per_gb_month
        ),
        query_cpu_ms=first.query_cpu_ms if config.baseline_query_cpu_ms is None else config.baseline_query_cpu_ms,
        replicas=first.replicas,
    )


def baseline_cost(vectors: int, config: CostConfig, model_dims: int, docs_per_second: float) -> CostBreakdown:
    """Yearly cost of one float32 tier at full dimension."""
    tier = tier_cost("float32", baseline_tier(config), vectors, model_dims, config)
    return _breakdown(vectors, [tier], config, docs_per_second)


@dataclass
class CostComparison:
    """Tiered against baseline for one size: both breakdowns and the yearly saving."""

    vectors: int
    tiered: CostBreakdown
    baseline: CostBreakdown
    saving_usd_per_year: float
    saving_share: float

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CostComparison:
        """Rebuild a comparison from its plain-dict form."""
        tiered, baseline = CostBreakdown.from_json(data["tiered"]), CostBreakdown.from_json(data["baseline"])
        return cls(data["vectors"], tiered, baseline, data["saving_usd_per_year"], data["saving_share"])


def compare(vectors: int, config: CostConfig, model_dims: int, docs_per_second: float) -> CostComparison:
    """Tiered and baseline cost for ``vectors`` vectors, and the saving (baseline − tiered)."""
    tiered = tiered_cost(vectors, config, model_dims, docs_per_second)
    base = baseline_cost(vectors, config, model_dims, docs_per_second)
    saving = base.total_usd_per_year - tiered.total_usd_per_year
    share = saving / base.total_usd_per_year if base.total_usd_per_year > 0 else 0.0
    return CostComparison(vectors, tiered, base, saving, share)


@dataclass
class CostReport:
    """The priced corpus and every projected size, with the inputs used and where they came from."""

    model: str
    model_dims: int
    docs_per_second: float
    throughput_source: str
    corpus: CostComparison
    projections: list[CostComparison]
    assumptions: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form (``cost.json``)."""
        data = asdict(self)
        data["format_version"] = 1
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CostReport:
        """Rebuild a report from ``cost.json`` (raises ValueError for another format version)."""
        if data.get("format_version") != 1:
            raise ValueError(f"cost.json format_version {data.get('format_version')!r} is not 1")
        fields = {k: v for k, v in data.items() if k != "format_version"}
        fields["corpus"] = CostComparison.from_json(data["corpus"])
        fields["projections"] = [CostComparison.from_json(p) for p in data["projections"]]
        return cls(**fields)


def cost_report(
    config: CostConfig,
    *,
    vectors: int,
    model: str,
    model_dims: int,
    docs_per_second: float,
    throughput_source: str,
    notes: list[str] | None = None,
) -> CostReport:
    """Price ``vectors`` vectors and every projected size; record the assumptions."""
    sizes = sorted(set(config.projected_vectors))
    return CostReport(
        model=model,
        model_dims=model_dims,
        docs_per_second=docs_per_second,
        throughput_source=throughput_source,
        corpus=compare(vectors, config, model_dims, docs_per_second),
        projections=[compare(n, config, model_dims, docs_per_second) for n in sizes],
        assumptions=config.model_dump(),
        notes=list(notes or []),
    )
