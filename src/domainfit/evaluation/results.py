"""What ``bench`` and ``eval`` measured: the result records their stages write as ``metrics.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from domainfit.evaluation.benchmark import SystemResult


@dataclass
class BenchResult:
    """Everything ``bench`` measured; also what ``metrics.json`` holds."""

    split: str
    n_queries: int
    n_documents: int
    systems: list[SystemResult]
    slices: dict[str, list[dict[str, Any]]]
    significance: dict[str, Any]
    hybrid_tuning: dict[str, Any]
    output_dir: str
    up_to_date: bool = False
    notes: list[str] = field(default_factory=list)
    similarity: dict[str, Any] = field(default_factory=dict)
    languages: dict[str, Any] = field(default_factory=dict)
    chunking: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-serialisable form written to ``metrics.json``."""
        data = asdict(self)
        data["format_version"] = 1
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchResult:
        """Rebuild a result from ``metrics.json`` (raises ValueError for another format version)."""
        if data.get("format_version") != 1:
            raise ValueError(f"format_version {data.get('format_version')!r} is not 1")
        data = {k: v for k, v in data.items() if k != "format_version"}
        data["systems"] = [SystemResult(**s) for s in data["systems"]]
        return cls(**data)


@dataclass
class EvalResult:
    """Everything ``eval`` measured; also what ``metrics.json`` holds."""

    split: str
    n_queries: int
    n_documents: int
    base_model: str
    model: str
    systems: list[SystemResult]
    slices: dict[str, list[dict[str, Any]]]
    significance: dict[str, Any]
    lift: dict[str, dict[str, float]]
    improved: list[dict[str, Any]]
    worsened: list[dict[str, Any]]
    forgetting: dict[str, Any]
    head_tail: dict[str, Any]
    output_dir: str
    notes: list[str] = field(default_factory=list)
    up_to_date: bool = False
    languages: dict[str, Any] = field(default_factory=dict)
    chunking: dict[str, Any] = field(default_factory=dict)
    deployable: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form written to ``metrics.json``."""
        return {"format_version": 1, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalResult:
        """Rebuild a result from ``metrics.json`` (raises ValueError for another format version)."""
        if data.get("format_version") != 1:
            raise ValueError(f"format_version {data.get('format_version')!r} is not 1")
        data = {k: v for k, v in data.items() if k != "format_version"}
        data["systems"] = [SystemResult(**s) for s in data["systems"]]
        return cls(**data)
