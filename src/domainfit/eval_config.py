"""Settings of the ``eval`` stage (the ``[eval]`` section of ``domainfit.toml``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from domainfit.models import DEFAULT_MODEL


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
