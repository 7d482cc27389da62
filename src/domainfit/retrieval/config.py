"""Configuration of domain-specific similarity: facets, time decay and category hierarchy.

These models form the ``[bench.similarity.*]`` sections of ``domainfit.toml``.
Every part is off by default, so a config without them behaves exactly as before.

Example::

    [bench.similarity.facets]
    enabled = true
    fields = ["title", "text", "attributes"]
    weights = "sweep"            # or [0.5, 0.2, 0.3]

    [bench.similarity.time]
    enabled = true
    date_field = "date"
    half_life_days = 180

    [bench.similarity.hierarchy]
    enabled = true
    path_field = "category"
    separator = ">"
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Weights tried per field when facet weights are swept (normalised to sum 1; all-zero skipped).
FACET_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)

#: Category weights tried per query level when the hierarchy weight is tuned.
HIERARCHY_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)


class _Strict(BaseModel):
    """Base for config sections: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class FacetsConfig(_Strict):
    """Embed several document fields separately, search each, fuse the min-max normalised scores with weights.

    ``fields`` name document fields: ``title``, ``text`` or any corpus metadata key
    (dicts are rendered ``key: value; ...``, lists comma-joined). ``weights`` is one
    non-negative weight per field, or ``"sweep"`` to pick them on the tuning split
    from ``grid`` (best primary metric).
    """

    enabled: bool = False
    fields: list[str] = Field(default_factory=lambda: ["title", "text"], min_length=1)
    weights: list[float] | Literal["sweep"] = "sweep"
    grid: list[float] = Field(default_factory=lambda: list(FACET_GRID), min_length=2)

    @field_validator("fields")
    @classmethod
    def _distinct_fields(cls, value: list[str]) -> list[str]:
        """Reject empty and repeated field names."""
        if any(not name.strip() for name in value):
            raise ValueError("field names must not be empty")
        if len(set(value)) != len(value):
            raise ValueError(f"fields are repeated: {value}")
        return value

    @field_validator("grid")
    @classmethod
    def _grid_non_negative(cls, value: list[float]) -> list[float]:
        """Require non-negative grid weights with at least one positive value."""
        if any(w < 0 for w in value) or not any(w > 0 for w in value):
            raise ValueError("grid weights must be >= 0 with at least one > 0")
        return value

    @model_validator(mode="after")
    def _weights_match_fields(self) -> FacetsConfig:
        """Explicit weights: one per field, non-negative, not all zero."""
        if isinstance(self.weights, list):
            if len(self.weights) != len(self.fields):
                raise ValueError(f"weights has {len(self.weights)} values for {len(self.fields)} fields")
            if any(w < 0 for w in self.weights) or not any(w > 0 for w in self.weights):
                raise ValueError("weights must be >= 0 with at least one > 0")
        return self


class TimeDecayConfig(_Strict):
    """Decay scores with the age of a document's date.

    ``multiplicative``: ``score * 0.5 ** (age / half_life)`` (negative scores are
    clipped to 0 first, so an older document never gains). ``additive``:
    ``score + weight * 0.5 ** (age / half_life)``, a recency bonus that reorders
    near-equal documents without overriding clear relevance differences.
    The age is measured from ``reference_date``, else from the query's own
    ``query_date_field`` when it has one, else from the newest document date.
    Documents without a date are treated per ``missing``: ``oldest`` (as old as
    the oldest dated document), ``no-decay`` (factor 1) or ``drop`` (removed).
    """

    enabled: bool = False
    date_field: str = Field("date", min_length=1)
    half_life_days: float = Field(365.0, description="age in days at which the factor is 0.5")
    mode: Literal["multiplicative", "additive"] = "multiplicative"
    weight: float = Field(0.1, ge=0, description="bonus of a brand-new document (additive mode)")
    reference_date: str | None = Field(None, description="ISO date the age is measured from")
    query_date_field: str | None = Field(None, description="query metadata field holding the query's own date")
    missing: Literal["oldest", "no-decay", "drop"] = "oldest"

    @field_validator("half_life_days")
    @classmethod
    def _positive_half_life(cls, value: float) -> float:
        """Require a positive half-life in days."""
        if not value > 0:
            raise ValueError(f"half_life_days must be > 0, got {value}")
        return value

    @field_validator("reference_date")
    @classmethod
    def _iso_reference(cls, value: str | None) -> str | None:
        """Require the reference date to parse as an ISO date or date-time."""
        if value is not None:
            try:
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"reference_date {value!r} is not an ISO date (YYYY-MM-DD)") from None
        return value


class HierarchyConfig(_Strict):
    """Match queries to category nodes; documents inherit the score of the best node on their path.

    ``path_field`` holds a document's category path, a string such as
    ``"Electronics > Audio > Headphones"`` split on ``separator``, or a list of
    names. The fused score is ``(1 - w) * item + w * category`` on min-max
    normalised scores, with one ``w`` per query level (``coarse``/``fine``) tuned
    on the tuning split from ``grid``. A query's level is its ``level_field``
    metadata when present, else inferred: coarse when its best category node
    scores above its best document.
    """

    enabled: bool = False
    path_field: str = Field("category", min_length=1)
    separator: str = Field(">", min_length=1)
    level_field: str = Field("level", min_length=1, description="query metadata field with coarse/fine")
    grid: list[float] = Field(default_factory=lambda: list(HIERARCHY_GRID), min_length=1)

    @field_validator("grid")
    @classmethod
    def _grid_in_unit(cls, value: list[float]) -> list[float]:
        """Require category weights between 0 and 1."""
        if any(not 0 <= w <= 1 for w in value):
            raise ValueError("grid weights must be between 0 and 1")
        return value


class SimilarityConfig(_Strict):
    """Domain-specific similarity systems the bench adds next to plain dense (all off by default)."""

    facets: FacetsConfig = Field(default_factory=FacetsConfig)
    time: TimeDecayConfig = Field(default_factory=TimeDecayConfig)
    hierarchy: HierarchyConfig = Field(default_factory=HierarchyConfig)

    def any_enabled(self) -> bool:
        """Tell whether any similarity system is switched on."""
        return self.facets.enabled or self.time.enabled or self.hierarchy.enabled


#: Encoding backends: sentence-transformers on torch, or a fast CPU runtime behind the same encode call.
ENCODE_BACKENDS = ("auto", "torch", "onnx", "onnx-int8", "openvino")


class EncodeConfig(_Strict):
    """How texts are encoded on CPU (the ``[encode]`` section).

    ``backend``: ``torch`` (sentence-transformers as loaded), ``onnx`` (the
    transformer exported with ``torch.onnx.export`` and run by onnxruntime with
    its graph optimisations), ``onnx-int8`` (the same, with dynamically quantised
    int8 matrix products), ``openvino`` (the exported graph compiled by
    OpenVINO), or ``auto``: the fastest of those that passes the check, else
    torch. A fast path is used only after its embeddings of ``check_texts``
    sampled texts of the user's own are each within ``min_cosine`` of torch
    float32's; otherwise encoding falls back to torch, with the reason recorded.
    Exports are made once per model and kept in the workspace cache.
    """

    backend: Literal["auto", "torch", "onnx", "onnx-int8", "openvino"] = "torch"
    check_texts: int = Field(64, ge=4, le=4096, description="texts sampled from the user's to check a fast path")
    min_cosine: float = Field(0.99, gt=0, le=1, description="lowest cosine to torch float32 allowed for any text")
    seed: int = 13
