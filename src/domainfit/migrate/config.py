"""Settings of a model migration: the ``[migrate]`` section of ``domainfit.toml``.

Example::

    [migrate]
    model = "domainfit-work/train/model"   # the new model (``--to``)
    canaries = "canaries.txt"              # query ids, one a line (default: the benchmark split's queries)
    metrics = ["ndcg@10", "recall@10"]
    min_lift = 0.0
    max_canary_churn = 0.5
    min_bridge_retention = 0.9
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domainfit.data.checks import split_name_problem
from domainfit.evaluation.config import known_metrics, known_test

#: notes §3 (aecp, Drift-Adapter): a query-side bridge is worth serving from 90% of full re-embed quality.
MIN_BRIDGE_RETENTION = 0.9
#: domainfit default: the share of canary top-k results that may change (1 - mean Jaccard@k).
MAX_CANARY_CHURN = 0.5


class MigrateSettings(BaseModel):
    """Settings of the ``migrate`` stage's steps: what to migrate to, compare, gate and bridge.

    Target: ``model`` (the new model; None: the system ``decide`` after
    training says to deploy) encoded with ``max_seq_length`` (None: eval's);
    ``mode`` the search mode both versions are compared in and the new one is
    served in (None: production's).
    Benchmark: ``split`` (the qrels the dual run and the bridge's retention are
    measured on), ``canaries`` (a file of query ids, one a line, ``#``
    comments; None: every judged query of ``split``) and ``depth`` (results
    per query of each run).
    Compare: ``metrics`` scored per slice (``primary_metric`` decides the
    gate), the paired ``significance_test`` at ``alpha``, and ``overlap_k``
    for overlap@k, Jaccard and top-1 agreement.
    Gate: ``min_lift`` (new minus old on the primary metric, over all
    queries), ``require_significant`` (the lift must also be significant),
    ``max_slice_drop`` (no slice of at least ``min_slice_queries`` queries may
    lose more, significantly; None: not checked) and ``max_canary_churn`` (gates
    only the canaries of a ``canaries`` file: without one the canaries are the
    judged queries, whose churn is reported but does not refuse, since their
    quality is gated by the lift and slice checks).
    Bridge: the ranks tried for the low-rank affine map (None: full rank), its
    ridge penalties, the share of paired texts held out to choose, the seed and
    ``min_bridge_retention``.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str | None = Field(None, description="the new model; default: the deployed system's")
    max_seq_length: int | None = Field(None, ge=8, description="the new model's window; default: eval's")
    mode: Literal["dense", "bm25", "hybrid"] | None = Field(None, description="default: production's mode")
    split: str = Field("test", description="benchmark split of the dual run and the bridge's retention")
    canaries: str | None = Field(None, description="file of canary query ids; default: the split's queries")
    depth: int = Field(100, ge=10, le=1000, description="results per query of each version's run")
    bridge_documents: int = Field(2000, ge=10, description="corpus texts sampled to fit the bridge on")
    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "recall@10"])
    primary_metric: str = "ndcg@10"
    significance_test: str = "student"
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    overlap_k: int = Field(10, ge=1)
    changed_examples: int = Field(10, ge=0, description="queries listed that changed most")
    min_lift: float = Field(0.0, ge=-1.0, le=1.0)
    require_significant: bool = False
    max_slice_drop: float | None = Field(0.05, ge=0.0, le=1.0)
    min_slice_queries: int = Field(5, ge=2)
    max_canary_churn: float = Field(MAX_CANARY_CHURN, ge=0.0, le=1.0)
    bridge_ranks: list[int | None] = Field(default_factory=lambda: [32, 64, 128, None])
    bridge_ridge: list[float] = Field(default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0])
    bridge_dev_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    min_bridge_retention: float = Field(MIN_BRIDGE_RETENTION, ge=0.0, le=1.0)
    seed: int = 0

    _metrics = field_validator("metrics")(known_metrics)

    @field_validator("split")
    @classmethod
    def _split(cls, value: str) -> str:
        """Accept a bare split name (the file ``qrels/<split>.tsv``)."""
        problem = split_name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    _test = field_validator("significance_test")(known_test)

    @field_validator("bridge_ranks")
    @classmethod
    def _ranks(cls, value: list[int | None]) -> list[int | None]:
        """Reject an empty list and ranks below 1."""
        if not value or any(r is not None and r < 1 for r in value):
            raise ValueError("bridge_ranks must list positive ranks (or null for full rank)")
        return value

    @field_validator("bridge_ridge")
    @classmethod
    def _ridge(cls, value: list[float]) -> list[float]:
        """Reject an empty list and negative penalties."""
        if not value or any(r < 0 for r in value):
            raise ValueError("bridge_ridge must list penalties >= 0")
        return value

    @model_validator(mode="after")
    def _primary(self) -> MigrateSettings:
        """Reject a primary metric that is not one of the metrics."""
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric {self.primary_metric!r} is not in metrics {self.metrics}")
        return self
