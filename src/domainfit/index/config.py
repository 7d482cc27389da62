"""Settings of the ``index`` stage (the ``[index]`` section of ``domainfit.toml``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


class IndexConfig(BaseModel):
    """Which backend stores the serving index, which model fills it, and how it is written.

    ``model`` overrides the deployed system (what ``decide`` after training says
    to deploy, as eval measured it); ``batch_size`` documents are embedded and
    committed together (a killed run redoes at most one batch);
    ``tag_prefix`` starts the tag production reads (``<prefix>-<version>-<time>``);
    ``engine`` ``ray`` encodes on Ray Data with ``ray_workers`` model actors
    (extra ``domainfit[ray]``; the default, ``local``, never imports Ray);
    ``precision`` how the vectors are stored (`domainfit.index.precision`):
    ``float32``, ``operating-point`` (what ``compress`` chose for the indexed
    model) or a configuration such as ``int8``, ``binary+float32x4``,
    ``truncate:256`` or ``trunc-256/int8``.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    backend: Literal["lancedb", "qdrant"] = "lancedb"
    model: str | None = Field(None, description="model to index with; default: the deployed system's")
    corpus: str | None = Field(None, description="table / collection name; default: the data folder's name")
    batch_size: int = Field(256, ge=1, description="documents embedded and committed together")
    tag_prefix: str = "prod"
    engine: Literal["local", "ray"] = "local"
    ray_workers: int = Field(2, ge=1)
    sample_query: str | None = Field(None, description="the report's sample search; default: a benchmark query")
    precision: str = Field(
        "float32", description="float32, operating-point (compress's choice), or e.g. int8, binary+float32x4"
    )

    @field_validator("precision")
    @classmethod
    def _precision(cls, value: str) -> str:
        """Accept float32, operating-point or a configuration an index can store."""
        from domainfit.index.precision import check_setting

        return check_setting(value)

    @field_validator("tag_prefix")
    @classmethod
    def _tag(cls, value: str) -> str:
        """Accept a short identifier (a letter, then letters, digits, ``_`` or ``-``)."""
        if not _TAG.match(value):
            raise ValueError("use a letter, then up to 31 letters, digits, _ or -")
        return value
