"""The ``[compress]`` section of ``domainfit.toml``: the sweep grid and the operating-point rule.

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

from domainfit.errors import UsageError
from domainfit.evaluation.metrics import check_metrics
from domainfit.models import DEFAULT_MODEL

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
