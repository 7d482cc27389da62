"""Settings of the data layer: ``[data]`` (record size cap) and ``[chunking]`` (long documents)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ChunkMethod = Literal["none", "auto", "fixed", "structural", "recursive"]
Aggregate = Literal["max", "sum-top-n"]


class DataConfig(BaseModel):
    """Settings of the data layer (the ``[data]`` section)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    max_line_mib: int = Field(8, ge=1, description="largest accepted JSONL record")


class ChunkingConfig(BaseModel):
    """The ``[chunking]`` section of ``domainfit.toml``.

    ``size``/``overlap`` are tokens of the model's tokenizer; ``aggregate`` turns chunk
    scores into document scores (``max``: the best chunk; ``sum-top-n``: the sum of the
    ``top_n`` best chunks); ``chunk_depth`` is how many chunks are retrieved per query
    before aggregating (None: ten times the document depth). ``bench`` also sweeps
    ``sweep_sizes`` x ``sweep_overlaps`` (plus the main setting) when ``sweep`` is on.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    method: ChunkMethod = Field("none", description="none | auto | fixed | structural | recursive")
    size: int | None = Field(None, ge=8, description="tokens per chunk (None: the model's window)")
    overlap: int = Field(32, ge=0, description="tokens shared by consecutive token windows")
    prefix_title: bool = Field(True, description="put the document title in front of every chunk")
    prefix_heading: bool = Field(True, description="put the section heading trail in front of every chunk")
    aggregate: Aggregate = Field("max", description="chunk scores to document score: max | sum-top-n")
    top_n: int = Field(3, ge=1, description="chunks summed by sum-top-n")
    chunk_depth: int | None = Field(None, ge=1, description="chunks retrieved per query (None: 10 x depth)")
    sweep: bool = Field(True, description="bench: also sweep chunk size x overlap (best marked)")
    sweep_sizes: list[int] = Field(default_factory=lambda: [128], description="sizes swept besides `size`")
    sweep_overlaps: list[int] = Field(default_factory=lambda: [0], description="overlaps swept besides `overlap`")

    @field_validator("sweep_sizes")
    @classmethod
    def _sizes(cls, value: list[int]) -> list[int]:
        """Reject sweep sizes below 8 tokens."""
        if any(v < 8 for v in value):
            raise ValueError(f"every sweep size must be at least 8 tokens, got {value}")
        return value

    @field_validator("sweep_overlaps")
    @classmethod
    def _overlaps(cls, value: list[int]) -> list[int]:
        """Reject negative sweep overlaps."""
        if any(v < 0 for v in value):
            raise ValueError(f"sweep overlaps must be >= 0, got {value}")
        return value

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingConfig:
        """Overlap must be smaller than the chunk size (or the windows would never advance)."""
        if self.size is not None and self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self
