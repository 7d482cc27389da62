"""What ``compress`` measured and chose: the record its stage writes as ``results.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from domainfit.compress.sweep import VariantResult


@dataclass
class CompressResult:
    """What ``compress`` measured and chose; also the content of ``results.json``."""

    model: str
    model_fingerprint: str
    split: str
    n_queries: int
    n_documents: int
    full_dim: int
    primary_metric: str
    latency_metric: str
    reference: str
    variants: list[VariantResult]
    operating_point: dict[str, Any]
    notes: list[str]
    machine: dict[str, Any]
    output_dir: str
    up_to_date: bool = False
    frontier: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-serialisable form written to ``results.json``."""
        data = asdict(self)
        data["format_version"] = 1
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompressResult:
        """Rebuild a result from ``results.json`` (raises ValueError for another format version)."""
        if data.get("format_version") != 1:
            raise ValueError(f"format_version {data.get('format_version')!r} is not 1")
        data = {k: v for k, v in data.items() if k != "format_version"}
        data["variants"] = [VariantResult.from_json(v) for v in data["variants"]]
        return cls(**data)
