"""Settings of compression: ``[compress]`` (sweep, operating point), ``[cost]`` (tiers, prices), ``[calibrate]``.

Unknown keys are errors (``extra="forbid"``). Example::

    [compress]
    dims = [384, 128]
    precisions = ["float32", "int8", "binary"]
    pq = [{m = 16, nbits = 8}]

    [compress.operating_point]
    min_retention = 0.97
    max_bytes_per_vector = 64
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domainfit.core.errors import UsageError
from domainfit.core.models import DEFAULT_MODEL
from domainfit.evaluation.metrics import check_metrics
from domainfit.retrieval.config import EncodeConfig

Precision = Literal["float32", "float16", "int8", "binary"]
Reduction = Literal["truncate", "pca"]
RescorePrecision = Literal["int8", "float32"]
LatencyMetric = Literal["single_p95_ms", "single_p50_ms", "batch_p95_ms", "batch_p50_ms"]

#: Matryoshka sizes tried when the model is at least that wide (the model's own width is always tried).
MATRYOSHKA_DIMS: tuple[int, ...] = (768, 512, 384, 256, 128, 64)


def _all_reductions() -> list[Reduction]:
    """Both reductions."""
    return ["truncate", "pca"]


def _all_precisions() -> list[Precision]:
    """Every scalar precision."""
    return ["float32", "float16", "int8", "binary"]


def _int8_rescoring() -> list[RescorePrecision]:
    """Rescore with int8 documents."""
    return ["int8"]


class _Section(BaseModel):
    """Base of every config section here: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PQSetting(_Section):
    """One product-quantiser shape: ``m`` sub-vectors of ``nbits`` bits each (``m`` must divide the dimension)."""

    m: int = Field(ge=1, le=1024, description="number of sub-quantisers")
    nbits: int = Field(8, ge=1, le=12, description="bits per sub-quantiser code (2**nbits centroids)")


class ObjectiveWeights(_Section):
    """Weights of the operating-point utility: quality up, log2 bytes down, latency down (each min-max scaled)."""

    quality: float = Field(1.0, ge=0)
    bytes: float = Field(0.0, ge=0)
    latency: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> ObjectiveWeights:
        """Reject all-zero weights (they would not rank anything)."""
        if self.quality + self.bytes + self.latency <= 0:
            raise ValueError("at least one weight must be positive")
        return self


class OperatingPointConfig(_Section):
    """How the operating point is chosen from the frontier.

    Constraints first (any of them may be None = unconstrained); among the
    frontier configurations that meet them, the one with the fewest bytes per
    vector wins (ties: higher quality, then lower latency), unless ``weights``
    are given, in which case the highest weighted utility wins.
    """

    max_bytes_per_vector: float | None = Field(None, gt=0, description="bytes per vector (see bytes_basis)")
    min_retention: float | None = Field(0.95, ge=0, le=2, description="primary metric / float32 full dimension")
    max_p95_ms: float | None = Field(None, gt=0, description="p95 latency (see compress.latency_metric)")
    bytes_basis: Literal["memory", "memory+rescore"] = Field(
        "memory", description="bytes compared: the in-memory index, or also the rescoring copy read for candidates"
    )
    weights: ObjectiveWeights | None = None


class CompressConfig(_Section):
    """Settings of the ``compress`` stage: the grid of configurations and how they are measured."""

    model: str = Field(DEFAULT_MODEL, description="bi-encoder name or path (base or fine-tuned)")
    split: str = Field("test", description="qrels split to evaluate")
    depth: int = Field(100, ge=1, le=10000, description="documents retrieved per query")
    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "recall@100"], min_length=1)
    primary_metric: str = "ndcg@10"
    reductions: list[Reduction] = Field(default_factory=_all_reductions, min_length=1)
    dims: list[int] = Field(default_factory=lambda: list(MATRYOSHKA_DIMS), min_length=1)
    precisions: list[Precision] = Field(default_factory=_all_precisions)
    pq: list[PQSetting] = Field(
        default_factory=lambda: [PQSetting(m=16, nbits=8), PQSetting(m=32, nbits=8), PQSetting(m=48, nbits=8)],
        description="FAISS IndexPQ shapes, at the model's full dimension",
    )
    ivf_pq: list[PQSetting] = Field(
        default_factory=lambda: [PQSetting(m=32, nbits=8)], description="FAISS IndexIVFPQ shapes"
    )
    ivf_nlist: int | None = Field(None, ge=1, description="IVF lists (None: 4*sqrt(N), at most N/39)")
    ivf_nprobe: int = Field(8, ge=1, description="IVF lists probed per query")
    rescore_with: list[RescorePrecision] = Field(
        default_factory=_int8_rescoring, description="document precision used to rescore binary and PQ candidates"
    )
    oversample: list[int] = Field(
        default_factory=lambda: [1, 4], description="rescoring reads depth*oversample candidates"
    )
    latency_queries: int = Field(100, ge=1, description="queries timed one at a time")
    latency_batch_size: int = Field(64, ge=1, description="queries per batch when timing batches")
    latency_repeats: int = Field(3, ge=1)
    latency_metric: LatencyMetric = "single_p95_ms"
    threads: int = Field(
        1, ge=1, le=256, description="FAISS and BLAS threads during the sweep (1: one query per core, as served)"
    )
    projected_vectors: list[int] = Field(
        default_factory=lambda: [1_000_000, 100_000_000, 1_000_000_000], description="index sizes projected"
    )
    batch_size: int = Field(32, ge=1, description="encoding batch size")
    max_seq_length: int | None = Field(256, ge=8, description="as in [bench], so its embedding cache is reused")
    encode: EncodeConfig = Field(
        default_factory=EncodeConfig, description="CPU encoding backend (torch, onnx, ..., auto)"
    )
    seed: int = 13
    operating_point: OperatingPointConfig = Field(default_factory=OperatingPointConfig)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        """Reject metric names the evaluator does not know."""
        try:
            return check_metrics(value)
        except UsageError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("dims")
    @classmethod
    def _dims_multiple_of_8(cls, value: list[int]) -> list[int]:
        """Dimensions must be positive multiples of 8 (binary codes pack 8 dimensions per byte)."""
        bad = [d for d in value if d < 8 or d % 8]
        if bad:
            raise ValueError(f"dimensions must be positive multiples of 8, got {bad}")
        return sorted(set(value), reverse=True)

    @field_validator("oversample")
    @classmethod
    def _positive_oversample(cls, value: list[int]) -> list[int]:
        """Oversampling factors are integers of at least 1."""
        if any(v < 1 for v in value):
            raise ValueError("oversampling factors must be >= 1")
        return sorted(set(value))

    @model_validator(mode="after")
    def _primary_in_metrics(self) -> CompressConfig:
        """Require the primary metric to be one of the metrics computed."""
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric {self.primary_metric!r} is not in metrics {self.metrics}")
        return self


class TierConfig(_Section):
    """One storage tier: what it holds, how it is stored, what it costs and how often it is read."""

    dims: int | None = Field(None, ge=1, description="dimensions kept (None: the model's full width)")
    precision: Precision = "float32"
    vector_share: float = Field(ge=0, le=1, description="share of the vectors stored in this tier")
    query_share: float = Field(ge=0, le=1, description="share of the queries served from this tier")
    storage_usd_per_gb_month: float = Field(ge=0, description="$ per GB-month of this tier's storage")
    query_cpu_ms: float = Field(ge=0, description="machine milliseconds one query costs in this tier")
    replicas: int = Field(1, ge=1, description="copies kept (for availability or throughput)")


def _default_tiers() -> dict[str, TierConfig]:
    """Hot (memory), warm (SSD) and cold (object storage) tiers with illustrative prices."""
    return {
        "hot": TierConfig(
            dims=None,
            precision="float16",
            vector_share=0.1,
            query_share=0.8,
            storage_usd_per_gb_month=5.0,
            query_cpu_ms=1.0,
        ),
        "warm": TierConfig(
            dims=384,
            precision="int8",
            vector_share=0.3,
            query_share=0.15,
            storage_usd_per_gb_month=0.08,
            query_cpu_ms=5.0,
        ),
        "cold": TierConfig(
            dims=128,
            precision="binary",
            vector_share=0.6,
            query_share=0.05,
            storage_usd_per_gb_month=0.023,
            query_cpu_ms=50.0,
        ),
    }


class CostConfig(_Section):
    """The ``[cost]`` section: sizes, unit prices, throughput and tiers (``[cost.tiers.<name>]``)."""

    model: str = Field(DEFAULT_MODEL, description="bi-encoder whose width and throughput are used")
    vectors: int | None = Field(None, ge=1, description="vectors to price (None: the corpus size of DATA)")
    projected_vectors: list[int] = Field(
        default_factory=lambda: [1_000_000, 100_000_000, 1_000_000_000, 100_000_000_000]
    )
    compute_usd_per_hour: float = Field(0.20, ge=0, description="$ per hour of one machine like the probe's")
    embed_docs_per_second: float | None = Field(None, gt=0, description="None: measured by a short probe")
    probe_documents: int = Field(64, ge=4, le=10000, description="documents the throughput probe encodes")
    embed_machines: int = Field(1, ge=1, description="machines re-embedding in parallel (wall-clock only)")
    reembeds_per_year: float = Field(1.0, ge=0, description="full re-embeddings a year (model upgrades)")
    queries_per_month: float = Field(10_000_000, ge=0)
    tiers: dict[str, TierConfig] = Field(default_factory=_default_tiers, min_length=1)
    baseline_storage_usd_per_gb_month: float | None = Field(None, ge=0, description="None: the first tier's price")
    baseline_query_cpu_ms: float | None = Field(None, ge=0, description="None: the first tier's")

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> CostConfig:
        """Vector shares and query shares of the tiers must each sum to 1."""
        for what in ("vector_share", "query_share"):
            total = sum(getattr(t, what) for t in self.tiers.values())
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"the tiers' {what} values must sum to 1, got {total:g}")
        return self


class CalibrateConfig(_Section):
    """The ``[calibrate]`` section of ``domainfit.toml``."""

    models: list[str] = Field(default_factory=lambda: [DEFAULT_MODEL], min_length=1)
    split: str = Field("dev", description="split whose judged queries calibrate the threshold")
    eval_split: str | None = Field("test", description="held-out split the threshold is checked on (None: skip)")
    beta: float = Field(1.0, gt=0, description="F-beta: > 1 favours recall, < 1 precision")
    hard_negatives: int = Field(10, ge=0, le=1000, description="top-ranked non-relevant documents per query")
    random_negatives: int = Field(10, ge=0, le=1000, description="random non-relevant documents per query")
    result_depth: int = Field(
        10, ge=1, le=1000, description="documents a query asks for; the empty-result rate looks at the best of them"
    )
    configurations: list[str] = Field(
        default_factory=lambda: ["full/float32", "full/int8", "full/binary", "trunc-128/float32", "pca-128/int8"],
        min_length=1,
        description="compression configurations (names as in `domainfit compress`); the first is the reference",
    )
    include_operating_point: bool = Field(True, description="also calibrate compress's operating point, if any")
    seed: int = 13
    batch_size: int = Field(32, ge=1)
    max_seq_length: int | None = Field(256, ge=8)
