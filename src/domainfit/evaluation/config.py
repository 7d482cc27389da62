"""Settings of the measuring stages: ``[bench]`` (baselines), ``[eval]`` (before/after), ``[decide]`` (thresholds)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domainfit.core.models import DEFAULT_MODEL
from domainfit.data.checks import split_name_problem
from domainfit.evaluation.significance import TESTS
from domainfit.retrieval.config import EncodeConfig, SimilarityConfig

#: Metric names the evaluator computes (as `domainfit.evaluation.metrics.check_metrics` accepts them).
KNOWN_METRIC = re.compile(r"^(?:(?:ndcg|mrr|map)(?:@[1-9][0-9]*)?|(?:recall|precision)@[1-9][0-9]*)$")


def short_name(model: str) -> str:
    """Return a short, file-name-safe label for a model name or path (the ``<label>`` of ``dense:<label>``)."""
    return Path(model.rstrip("/")).name.replace(" ", "_") or "model"


def known_metrics(value: list[str]) -> list[str]:
    """Reject metric names the evaluator does not know, and an empty list."""
    if not value:
        raise ValueError("no metric: list at least one, e.g. ['ndcg@10']")
    bad = [m for m in value if not KNOWN_METRIC.match(m)]
    if bad:
        raise ValueError(
            f"unknown metric(s) {bad}; use ndcg@k, recall@k, mrr@k, map@k, precision@k, ndcg, mrr or map "
            "(k a positive integer)"
        )
    return value


def known_test(value: str) -> str:
    """Reject significance tests ranx does not run."""
    if value not in TESTS:
        raise ValueError(f"unknown significance test {value!r}; use one of {', '.join(TESTS)}")
    return value


def split_name(value: str | None) -> str | None:
    """Reject split names that cannot be a ``qrels/<split>.tsv`` file (None passes: no split)."""
    if value is None:
        return None
    problem = split_name_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


class EvalConfig(BaseModel):
    """Settings of the ``eval`` stage (the ``[eval]`` section of ``domainfit.toml``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    split: str = "test"
    tune_split: str | None = "dev"
    base_model: str = DEFAULT_MODEL
    model: str | None = Field(None, description="fine-tuned model; default: <workspace>/train/model")
    general: str | None = Field(
        "bundled",
        description='general-domain data for the forgetting check: "bundled" (the packaged pairs), a BEIR folder '
        'or a pair file; "none" skips the check',
    )
    neighbours_k: int = Field(10, ge=1)
    max_general_texts: int = Field(2000, ge=20)
    examples: int = Field(5, ge=0, description="queries shown that improved and that got worse")
    depth: int = Field(100, ge=1)
    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "recall@100", "mrr@10", "map@100"])
    primary_metric: str = "ndcg@10"
    batch_size: int = Field(32, ge=1)
    max_seq_length: int | None = Field(256, ge=8)
    significance_test: str = "student"
    encode: EncodeConfig = Field(
        default_factory=EncodeConfig,
        description="CPU encoding backend of every dense system, the forgetting check, index (torch, ..., auto)",
    )

    _metrics = field_validator("metrics")(known_metrics)
    _test = field_validator("significance_test")(known_test)
    _splits = field_validator("split", "tune_split")(split_name)


class _Strict(BaseModel):
    """Base for config sections: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BenchConfig(_Strict):
    """Settings of the ``bench`` stage (baselines on one split)."""

    split: str = Field("test", description="qrels split to evaluate")
    tune_split: str | None = Field("dev", description="split used to tune the hybrid weight (skipped if absent)")
    models: list[str] = Field(
        default_factory=lambda: [DEFAULT_MODEL], min_length=1, description="bi-encoders to evaluate"
    )
    reranker: str | None = Field(None, description="cross-encoder name or path; reranks the best hybrid run")
    rerank_depth: int = Field(50, ge=1, le=1000)
    depth: int = Field(100, ge=1, le=10000, description="documents retrieved per query")
    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "recall@100", "mrr@10", "map@100"])
    primary_metric: str = "ndcg@10"
    rrf_k: int = Field(60, ge=1)
    hybrid: bool = True
    batch_size: int = Field(32, ge=1)
    max_seq_length: int | None = Field(256, ge=8)
    slice_fields: list[str] | None = Field(None, description="query metadata fields to slice by (None = all)")
    significance_test: str = "student"
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    similarity: SimilarityConfig = Field(
        default_factory=SimilarityConfig, description="facets, time decay, category hierarchy (all off)"
    )
    encode: EncodeConfig = Field(
        default_factory=EncodeConfig, description="CPU encoding backend of the dense systems (torch, onnx, ..., auto)"
    )

    _metrics = field_validator("metrics")(known_metrics)
    _test = field_validator("significance_test")(known_test)
    _splits = field_validator("split", "tune_split")(split_name)


class DecideConfig(BaseModel):
    """Thresholds and prices of the decision (the ``[decide]`` section)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    metric: str = "ndcg@10"
    min_lift: float = Field(0.03, ge=0, description="smallest improvement worth shipping")
    target: float | None = Field(None, ge=0, le=1, description="quality the user needs (absolute metric)")
    min_pairs: int = Field(300, ge=1, description="training pairs needed before fine-tuning")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level for shipping")
    max_forgetting: float = Field(0.02, ge=0, description="largest general-set drop accepted")
    min_neighbour_overlap: float = Field(0.5, ge=0, le=1, description="label-free forgetting floor")
    usd_per_hour: float = Field(0.50, ge=0, description="compute price of this machine")
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(32, ge=1)
    max_steps: int = Field(-1, description="training steps to cost (-1: the epochs over every pair)")
    current: str = Field("dense:base", description="today's system, which the deployable answer must beat (eval name)")
    levels: bool = Field(True, description="before training: estimate every level of effort and name the cheapest")
    expected_full_lift: float = Field(
        0.05, ge=0, le=1, description="prior lift of full fine-tuning (metric points) until one is measured"
    )
