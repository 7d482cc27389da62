"""What ``synth`` produced: the record its stage writes as ``summary.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SynthResult:
    """What ``synth`` produced; also the content of ``summary.json``."""

    n_documents: int
    n_source_documents: int
    excluded_eval_documents: int
    n_generated: int
    n_kept: int
    sources: dict[str, dict[str, Any]]
    filters: dict[str, int]
    click_share: dict[str, float] | None
    clicks: dict[str, int] | None
    llm: dict[str, Any] | None
    leakage: dict[str, Any]
    examples: dict[str, list[dict[str, Any]]]
    seeds: dict[str, Any]
    config: dict[str, Any]
    generators: dict[str, dict[str, Any]]
    seconds: dict[str, float]
    output_dir: str
    up_to_date: bool = False
    notes: list[str] = field(default_factory=list)
    chunking: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-serialisable form written to ``summary.json``."""
        data = asdict(self)
        data["format_version"] = 1
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SynthResult:
        """Rebuild a result from ``summary.json`` (raises ValueError for another format version)."""
        if data.get("format_version") != 1:
            raise ValueError(f"format_version {data.get('format_version')!r} is not 1")
        return cls(**{k: v for k, v in data.items() if k != "format_version"})
