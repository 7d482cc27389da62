"""Read a corpus file into index rows, validated before anything is written.

Inputs: a BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text``, other fields
as metadata). Every defect is an `InputError` naming file, line and field:
what `domainfit.data.beir.read_corpus` rejects (bad JSON, a missing or
duplicate id, an empty text, ...), and a metadata field whose type differs
from the one it had on an earlier line (an index column has one type). Kept
metadata: scalar values under identifier keys (`domainfit.index.schema`).
"""

from __future__ import annotations

from pathlib import Path

from domainfit.core.errors import InputError
from domainfit.data.beir import read_corpus
from domainfit.data.jsonl import MAX_LINE_BYTES, iter_jsonl
from domainfit.index.schema import merge_kind, scalar_kind, stored_metadata
from domainfit.index.types import IndexDocument
from domainfit.text.config import DEFAULT_TEXT, TextConfig


def read_index_corpus(
    path: Path, *, max_line_bytes: int = MAX_LINE_BYTES, text: TextConfig = DEFAULT_TEXT
) -> list[IndexDocument]:
    """Return the corpus as index rows, in file order (raises `InputError` with file:line: field)."""
    docs = read_corpus(path, max_line_bytes, text)
    lines = [number for number, _record in iter_jsonl(path, max_line_bytes)]
    kinds: dict[str, tuple[str, int]] = {}
    out: list[IndexDocument] = []
    for line, doc in zip(lines, docs.values(), strict=True):
        meta = stored_metadata(doc.metadata)
        for key, value in meta.items():
            kind = scalar_kind(value)
            assert kind is not None
            have = kinds.get(key)
            merged = merge_kind(have[0] if have else None, kind)
            if merged is None:
                assert have is not None
                raise InputError(path, line, key, f"is {kind}, but it is {have[0]} on line {have[1]}")
            kinds[key] = (merged, have[1] if have else line)
        out.append(IndexDocument(doc.id, doc.text, doc.title, meta))
    return out
