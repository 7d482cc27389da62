"""Settings of the ``mine`` stage (the ``[mine]`` section of ``domainfit.toml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domainfit.core.models import DEFAULT_MODEL
from domainfit.retrieval.config import EncodeConfig
from domainfit.synth.config import LLMNegativesConfig

if TYPE_CHECKING:
    from domainfit.mine.negatives import MiningSettings

Source = Literal["clicks", "llm", "dense", "bm25", "random"]


def _default_sources() -> list[Source]:
    """Return the sources mined by default (clicks only contribute where synthetic queries carry them)."""
    return ["dense", "bm25", "random", "clicks"]


class MineConfig(BaseModel):
    """Settings of the ``mine`` stage (``[mine]`` in ``domainfit.toml``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str = Field(DEFAULT_MODEL, description="base bi-encoder: dense source, similarities, difficulty")
    train_split: str = Field("train", description="qrels split whose judgements become training pairs")
    synthetic: bool = Field(True, description="also train on <workspace>/synth/queries.jsonl when it exists")
    synthetic_share: float | None = Field(
        None, gt=0, le=1, description="at most this share of pairs synthetic when labelled pairs exist (None: all)"
    )
    sources: list[Source] = Field(default_factory=_default_sources, min_length=1, description="negative sources")
    negatives: int = Field(4, ge=1, le=64, description="negatives per example (columns negative_1..n)")
    per_source: dict[Source, int] | None = Field(None, description="negatives per source; must sum to negatives")
    range_min: int = Field(10, ge=0, description="first rank (0-based) of the dense/BM25 candidate window")
    range_max: int = Field(100, ge=1, le=10000, description="end (exclusive) of the candidate window")
    sampling: Literal["top", "random"] = Field("random", description="best ranks of the window, or a random sample")
    absolute_margin: float | None = Field(None, ge=0, description="drop if similarity + margin > positive's")
    relative_margin: float | None = Field(0.05, ge=0, le=1, description="drop if similarity > pos - |pos| * margin")
    drop_duplicates: bool = Field(True, description="drop documents whose normalised text equals the positive's")
    cross_encoder: str | None = Field(None, description="cross-encoder name or path for the false-negative check")
    ce_absolute_margin: float | None = Field(None, ge=0)
    ce_relative_margin: float | None = Field(0.05, ge=0, le=1)
    stages: list[str] = Field(default_factory=lambda: ["easy", "medium", "hard"], min_length=1)
    stage_shares: list[float] | None = Field(None, description="share of examples per stage (equal by default)")
    seed: int = 13
    batch_size: int = Field(32, ge=1, description="encoding batch size")
    max_seq_length: int | None = Field(256, ge=8)
    encode: EncodeConfig = Field(
        default_factory=EncodeConfig, description="CPU encoding backend (torch, onnx, ..., auto)"
    )
    query_batch: int = Field(256, ge=1, description="queries searched per step (memory bound)")
    search_backend: Literal["auto", "numpy", "faiss"] = "auto"
    random_pool: int = Field(32, ge=1, description="documents the random source draws per pair")
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    leakage_overlap: float = Field(0.8, gt=0, le=1, description="token Jaccard at which queries are near-duplicates")
    labelled_near_duplicates: Literal["drop", "fail"] = Field(
        "drop", description="labelled train queries that nearly copy a dev/test query: drop them, or fail"
    )
    near_duplicate_overlap: float = Field(
        0.8, gt=0, le=1, description="token Jaccard with the positive at which an LLM passage is a near copy"
    )
    llm: LLMNegativesConfig = Field(
        default_factory=LLMNegativesConfig, description="endpoint of the 'llm' source (needs base_url)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> MineConfig:
        """Check the window, per-source counts and stages against each other."""
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be below range_max ({self.range_max})")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"sources repeat a name: {self.sources}")
        if "llm" in self.sources and self.llm.base_url is None:
            raise ValueError(
                "sources include 'llm' but no LLM endpoint is configured: set mine.llm.base_url "
                "(e.g. [mine.llm] base_url = \"http://127.0.0.1:8000/v1\") or remove 'llm' from sources"
            )
        if self.per_source is not None:
            extra = sorted(set(self.per_source) - set(self.sources))
            if extra:
                raise ValueError(f"per_source names sources that are not enabled: {extra}")
            if sum(self.per_source.values()) != self.negatives or min(self.per_source.values()) < 0:
                raise ValueError(f"per_source counts must be >= 0 and sum to negatives ({self.negatives})")
        bad = [s for s in self.stages if not s or s in (".", "..") or "/" in s or "\\" in s]
        if bad or len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stage names must be unique folder names, got {self.stages}")
        if self.stage_shares is not None and (
            len(self.stage_shares) != len(self.stages) or min(self.stage_shares) < 0 or sum(self.stage_shares) <= 0
        ):
            raise ValueError("stage_shares needs one non-negative share per stage, not all zero")
        return self

    def mining_settings(self) -> MiningSettings:
        """Return the miner's settings for this config."""
        from domainfit.mine.negatives import MiningSettings

        return MiningSettings(
            sources=tuple(self.sources),
            negatives=self.negatives,
            per_source={str(k): v for k, v in self.per_source.items()} if self.per_source is not None else None,
            range_min=self.range_min,
            range_max=self.range_max,
            sampling=self.sampling,
            absolute_margin=self.absolute_margin,
            relative_margin=self.relative_margin,
            drop_duplicates=self.drop_duplicates,
            near_duplicate_overlap=self.near_duplicate_overlap,
            ce_absolute_margin=self.ce_absolute_margin,
            ce_relative_margin=self.ce_relative_margin,
            seed=self.seed,
            query_batch=self.query_batch,
            search_backend=self.search_backend,
            random_pool=self.random_pool,
            ce_batch_size=self.batch_size,
            bm25_k1=self.bm25_k1,
            bm25_b=self.bm25_b,
        )
