"""What the ``index`` stage built: the `IndexResult` stored in its ``result.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Version of ``result.json``.
RESULT_FORMAT = 1


@dataclass
class IndexResult:
    """The serving index as built: where, which model and system, its size, versions, tags and one sample search.

    ``folder`` is the index folder (``serving.json`` and the store); ``pointer``
    the production pointer's JSON; ``sync`` what the incremental re-embedding did
    (`domainfit.index.embed.SyncResult`); ``versions`` model version → dimension;
    ``tags`` tag → table version; ``size_bytes`` the store on disk; ``sample`` one
    search in the served mode (``query``, ``mode``, ``hits`` of id, score, title);
    ``served`` False when the build left production where `migrate promote` put
    it (``pointer`` is then what this build would have served).
    """

    backend: str
    corpus: str
    folder: str
    system: str
    model: str
    version: str
    documents: int
    pointer: dict[str, Any]
    sync: dict[str, Any]
    versions: dict[str, int]
    tags: dict[str, int]
    size_bytes: int
    sample: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    output_dir: str = ""
    up_to_date: bool = False
    served: bool = True
    format_version: int = RESULT_FORMAT

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (``result.json``)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexResult:
        """Read the JSON form back (ValueError for another format)."""
        if data.get("format_version") != RESULT_FORMAT:
            raise ValueError(f"index result format {data.get('format_version')!r}, expected {RESULT_FORMAT}")
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
