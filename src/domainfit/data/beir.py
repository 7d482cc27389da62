"""Read, validate and write BEIR folders.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``, any other
fields kept as metadata), ``queries.jsonl`` (``_id``, ``text``, metadata such as
``family``, ``lang``, ``slice``) and ``qrels/<split>.tsv`` (a header row, then
``query-id  corpus-id  score`` with integer graded relevance).

Every defect raises `InputError` with file, line and field; nothing is written
while reading.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domainfit.core.errors import InputError
from domainfit.core.files import atomic_write_text, staged_dir
from domainfit.core.types import Document, Qrels, Query
from domainfit.data.checks import MAX_GRADE, check_id
from domainfit.data.jsonl import MAX_LINE_BYTES, dumps_line, iter_jsonl, iter_lines, require_str
from domainfit.text.config import DEFAULT_TEXT, TextConfig

QRELS_HEADER = ("query-id", "corpus-id", "score")
_INTEGER = re.compile(r"^-?[0-9]+$")
_RESERVED_DOC = {"_id", "title", "text"}
_RESERVED_QUERY = {"_id", "text"}


@dataclass
class BeirDataset:
    """A loaded BEIR folder: documents, queries and qrels per split."""

    corpus: dict[str, Document]
    queries: dict[str, Query]
    qrels: dict[str, Qrels] = field(default_factory=dict)
    root: Path | None = None

    def split_queries(self, split: str) -> dict[str, Query]:
        """Return the queries judged in ``split`` (raises KeyError for an unknown split)."""
        return {qid: self.queries[qid] for qid in self.qrels[split] if qid in self.queries}


def _metadata(record: dict[str, Any], reserved: set[str]) -> dict[str, Any]:
    """Collect non-reserved fields; a nested ``metadata`` object is flattened into them."""
    meta: dict[str, Any] = {}
    for key, value in record.items():
        if key in reserved:
            continue
        if key == "metadata" and isinstance(value, dict):
            meta.update(value)
        else:
            meta[key] = value
    return meta


def _read_id(record: dict[str, Any], path: Path, line: int) -> str:
    """Return the record's ``_id``: a non-empty string every writer can carry (see `check_id`)."""
    return check_id(require_str(record, "_id", path, line), path, line, "_id")


def _unique_records(path: Path, max_line_bytes: int, what: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """Yield ``(line, id, record)`` for every record, rejecting bad and duplicate ids and empty files."""
    first_seen: dict[str, int] = {}
    for line, record in iter_jsonl(path, max_line_bytes):
        ident = _read_id(record, path, line)
        if ident in first_seen:
            raise InputError(path, line, "_id", f"duplicate id {ident!r} (first on line {first_seen[ident]})")
        first_seen[ident] = line
        yield line, ident, record
    if not first_seen:
        raise InputError(path, 0, "-", f"no {what} in the file")


def read_corpus(
    path: Path, max_line_bytes: int = MAX_LINE_BYTES, text: TextConfig = DEFAULT_TEXT
) -> dict[str, Document]:
    """Read and validate ``corpus.jsonl``; returns documents by id, in file order.

    Titles and texts are prepared under ``text`` (`domainfit.text.config.TextConfig.prepare`).
    """
    docs: dict[str, Document] = {}
    for line, ident, record in _unique_records(path, max_line_bytes, "documents"):
        title = text.prepare(require_str(record, "title", path, line, required=False, allow_empty=True))
        body = text.prepare(require_str(record, "text", path, line, required=True, allow_empty=True))
        if not body.strip() and not title.strip():
            raise InputError(path, line, "text", "is empty (and so is the title)")
        docs[ident] = Document(id=ident, text=body, title=title, metadata=_metadata(record, _RESERVED_DOC))
    return docs


def read_queries(path: Path, max_line_bytes: int = MAX_LINE_BYTES, text: TextConfig = DEFAULT_TEXT) -> dict[str, Query]:
    """Read and validate ``queries.jsonl``; returns queries by id, in file order.

    Texts are prepared under ``text`` exactly as queries are at search time.
    """
    queries: dict[str, Query] = {}
    for line, ident, record in _unique_records(path, max_line_bytes, "queries"):
        query = text.prepare(require_str(record, "text", path, line))
        if not query:
            raise InputError(path, line, "text", "is empty once control characters and surrounding spaces are removed")
        meta = _metadata(record, _RESERVED_QUERY)
        if "family" in meta and not isinstance(meta["family"], str | int):
            raise InputError(path, line, "family", "must be a string")
        queries[ident] = Query(id=ident, text=query, metadata=meta)
    return queries


def check_qrels_header(path: Path, line: int, text: str, cols: list[str]) -> None:
    """Raise `InputError` unless the first line is the qrels header row."""
    if tuple(c.strip().lower() for c in cols) == QRELS_HEADER:
        return
    if len(cols) == 3 and cols[2].strip().lstrip("-").isdigit():
        raise InputError(path, line, "-", "missing header row 'query-id\\tcorpus-id\\tscore'")
    raise InputError(path, line, "-", f"header must be 'query-id\\tcorpus-id\\tscore', got {text!r:.60}")


def parse_qrels_row(path: Path, line: int, cols: list[str]) -> tuple[str, str, int]:
    """Parse one judgement row into (query id, document id, integer grade)."""
    if len(cols) != 3:
        raise InputError(path, line, "-", f"expected 3 tab-separated columns, got {len(cols)}")
    qid, did, score_text = (c.strip() for c in cols)
    check_id(qid, path, line, "query-id")
    check_id(did, path, line, "corpus-id")
    if not _INTEGER.match(score_text):
        raise InputError(path, line, "score", f"must be an integer, got {score_text!r:.20}")
    digits = score_text.lstrip("-").lstrip("0")
    score = int(score_text) if len(digits) <= len(str(MAX_GRADE)) else MAX_GRADE + 1  # no 4300-digit int()
    if abs(score) > MAX_GRADE:
        raise InputError(path, line, "score", f"out of range: grades must be between -{MAX_GRADE} and {MAX_GRADE}")
    return qid, did, score


def read_qrels(path: Path, query_ids: set[str] | dict[str, Any], doc_ids: set[str] | dict[str, Any]) -> Qrels:
    """Read and validate one ``qrels/<split>.tsv`` against known query and document ids.

    Ids must be valid (`check_id`) and known, grades integers within
    ``±MAX_GRADE``. A file with no judgement of grade > 0 (only the header
    row, or only zero and negative grades) judges no query and is rejected:
    it could neither be evaluated nor trained on.
    """
    qrels: Qrels = {}
    header_seen = False
    for line, text in iter_lines(path):
        cols = text.split("\t")
        if not header_seen:
            header_seen = True
            check_qrels_header(path, line, text, cols)
            continue
        qid, did, score = parse_qrels_row(path, line, cols)
        if qid not in query_ids:
            raise InputError(path, line, "query-id", f"unknown query {qid!r} (not in queries.jsonl)")
        if did not in doc_ids:
            raise InputError(path, line, "corpus-id", f"unknown document {did!r} (not in corpus.jsonl)")
        judged = qrels.setdefault(qid, {})
        if did in judged:
            raise InputError(path, line, "corpus-id", f"duplicate judgement for ({qid!r}, {did!r})")
        judged[did] = score
    if not header_seen:
        raise InputError(path, 0, "-", "empty file (expected a header row and judgements)")
    if not qrels:
        raise InputError(path, 0, "-", "no judgements after the header row: the split judges no query")
    if not any(grade > 0 for docs in qrels.values() for grade in docs.values()):
        raise InputError(path, 0, "score", "no judgement with grade > 0 (all are <= 0): the split judges no query")
    return qrels


def load_beir(
    folder: Path | str,
    splits: list[str] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    text: TextConfig = DEFAULT_TEXT,
) -> BeirDataset:
    """Load a BEIR folder; ``splits`` limits which ``qrels/*.tsv`` are read (default: all).

    ``max_line_bytes`` caps one JSONL record (a larger document should be split);
    ``text`` are the ``[text]`` settings documents and queries are prepared under.
    """
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise InputError(root, 0, "-", "not a folder (expected a BEIR folder with corpus.jsonl)")
    corpus = read_corpus(root / "corpus.jsonl", max_line_bytes, text)
    queries_path = root / "queries.jsonl"
    queries = read_queries(queries_path, max_line_bytes, text) if queries_path.exists() else {}
    qrels_dir = root / "qrels"
    available = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    wanted = available if splits is None else splits
    if wanted and not queries_path.exists():
        raise InputError(queries_path, 0, "-", "file not found (the qrels judge queries, so queries.jsonl is needed)")
    qrels: dict[str, Qrels] = {}
    for split in wanted:
        path = qrels_dir / f"{split}.tsv"
        if not path.is_file():
            raise InputError(
                path,
                0,
                "-",
                f"split {split!r} not found; available: {', '.join(available) or 'none'}",
            )
        qrels[split] = read_qrels(path, queries, corpus)
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels, root=root)


def write_beir(dataset: BeirDataset, folder: Path | str) -> Path:
    """Write ``dataset`` as a BEIR folder, atomically (the folder appears complete or not at all).

    Splits without judgements get no ``qrels/<split>.tsv``.
    """
    final = Path(folder).expanduser().resolve()
    with staged_dir(final) as tmp:
        atomic_write_text(
            tmp / "corpus.jsonl",
            "".join(
                dumps_line({"_id": d.id, "title": d.title, "text": d.text, **d.metadata})
                for d in dataset.corpus.values()
            ),
        )
        atomic_write_text(
            tmp / "queries.jsonl",
            "".join(dumps_line({"_id": q.id, "text": q.text, **q.metadata}) for q in dataset.queries.values()),
        )
        for split, qrels in dataset.qrels.items():
            if not qrels:  # an empty split is left out: a file with only the header judges nothing
                continue
            rows = ["\t".join(QRELS_HEADER)]
            rows += [f"{qid}\t{did}\t{rel}" for qid, docs in qrels.items() for did, rel in docs.items()]
            atomic_write_text(tmp / "qrels" / f"{split}.tsv", "\n".join(rows) + "\n")
    return final
