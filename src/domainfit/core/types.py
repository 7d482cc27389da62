"""Plain data types shared across stages.

Qrels and runs are nested dicts, the layout ranx, ir_measures and pytrec_eval
all accept: ``{query_id: {doc_id: relevance}}`` and ``{query_id: {doc_id: score}}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


@dataclass
class Document:
    """One corpus document: id, optional title, text and free-form metadata."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def full_text(self) -> str:
        """Return the text an encoder sees: title and text joined by a newline."""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass
class Query:
    """One query: id, text and metadata (for example ``family``, ``lang``, ``slice``)."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
