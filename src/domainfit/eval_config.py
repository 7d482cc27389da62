"""Settings of the ``eval`` stage (the ``[eval]`` section of ``domainfit.toml``) and checks shared with ``[bench]``."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domainfit.data.checks import split_name_problem
from domainfit.evaluation.significance import TESTS
from domainfit.models import DEFAULT_MODEL

#: Metric names the evaluator computes (as `domainfit.evaluation.metrics.check_metrics` accepts them).
KNOWN_METRIC = re.compile(r"^(?:(?:ndcg|mrr|map)(?:@[1-9][0-9]*)?|(?:recall|precision)@[1-9][0-9]*)$")


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

    _metrics = field_validator("metrics")(known_metrics)
    _test = field_validator("significance_test")(known_test)
    _splits = field_validator("split", "tune_split")(split_name)
