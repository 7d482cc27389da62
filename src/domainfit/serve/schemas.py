"""The service's request and response bodies (pydantic), as its OpenAPI schema shows them.

The request bodies here carry every field without the caps; `domainfit.serve.app`
subclasses them with the caps of its `ServeConfig` (``k``, query length,
number of filters), so the published schema states the limits the service enforces.
Unknown keys and non-finite numbers are refused (422).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: A metadata value a filter compares with.
FilterValue = str | int | float | bool
SearchMode = Literal["dense", "bm25", "hybrid"]


class _Body(BaseModel):
    """Base of request bodies: unknown keys and NaN or infinite numbers are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SearchBody(_Body):
    """``POST /search``: a query, how many results, how to search, which model version and which fields."""

    query: str = Field(description="the query text")
    k: int = Field(10, description="number of results")
    mode: SearchMode | None = Field(None, description="dense, bm25 or hybrid (default: the index's)")
    filters: dict[str, FilterValue | list[FilterValue]] | None = Field(
        None, description="metadata equality filters; a list means any of its values"
    )
    model_version: str | None = Field(None, max_length=128, description="model version to search (default: production)")
    fields: list[str] = Field(
        default_factory=list, max_length=32, description="stored fields each hit returns (title, text, metadata keys)"
    )
    min_score: float | None = Field(
        None, description="drop hits scoring below this (default: the calibrated threshold, dense searches only)"
    )


class EmbedBody(_Body):
    """``POST /embed`` (text-embeddings-inference's shape): texts in, one vector per text out."""

    inputs: str | list[str] = Field(description="one text or a batch of texts")
    normalize: bool = Field(True, description="L2-normalise the vectors")
    truncate: bool = Field(True, description="cut texts to the model's window (the model always does)")
    prompt_name: str | None = Field(None, max_length=128, description="one of the model's prompts, prepended")
    model_version: str | None = Field(None, max_length=128, description="model version (default: production)")


class SearchHit(BaseModel):
    """One result: document id, score (higher is better) and the fields asked for."""

    id: str
    score: float
    fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class BridgeUsed(BaseModel):
    """The query-side bridge a search went through (``serve --bridge``): which map, and what it retains."""

    map: str = Field(description="the map file (migrate bridge's bridge.npz)")
    kind: str = Field(description="procrustes or affine")
    retention: float = Field(description="bridged over full re-embedding on `metric`, measured by migrate bridge")
    metric: str
    query_model: str = Field(description="the new model the query was embedded with")
    query_version: str = Field(description="the new model's version (its own vectors are still being backfilled)")
    document_version: str = Field(description="the version whose document vectors were searched")
    dims: list[int] = Field(description="the map's input and output widths")


class SearchResponse(BaseModel):
    """The results of one search, best first, with what was searched (and the bridge, when one was used)."""

    hits: list[SearchHit]
    mode: SearchMode
    version: str
    k: int
    min_score: float | None
    took_ms: float
    bridge: BridgeUsed | None = Field(
        None, description="set when the query went through a bridge into this version's vectors"
    )


class Health(BaseModel):
    """``GET /health``: the service can read its index."""

    status: Literal["ok"]
    documents: int


class Limits(BaseModel):
    """What one request may ask for."""

    max_k: int
    max_query_chars: int
    max_client_batch_size: int
    max_body_bytes: int
    max_filters: int


class VersionInfo(BaseModel):
    """One model version of the index."""

    version: str
    dimension: int
    model: str | None
    threshold: float | None
    precision: str = Field(
        "full/float32", description="how its vectors are stored: compress's configuration name (full/float32, ...)"
    )


class Info(BaseModel):
    """``GET /info``: the served model and index (text-embeddings-inference's ``model_id`` included)."""

    model_id: str
    version: str
    dimension: int
    documents: int
    threshold: float | None
    mode: SearchMode
    tag: str | None
    backend: str
    versions: list[VersionInfo]
    limits: Limits
    auth: bool
    shadow: dict[str, Any] | None = Field(None, description="shadow version and its counts (serve --shadow)")
    pointer: dict[str, Any] | None = Field(None, description="the production pointer followed, and its switches")
    bridge: BridgeUsed | None = Field(
        None, description="the query-side bridge searches of the served version go through (serve --bridge)"
    )


class ErrorBody(BaseModel):
    """Every error response: a message and its kind."""

    error: str
    error_type: str
