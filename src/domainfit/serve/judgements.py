"""Relevance judgements from the ``/compare`` page, appended to a BEIR folder named when the service starts.

`JudgementFolder` owns two files of one folder and appends to nothing else:

- ``queries.jsonl``: one ``{"_id", "text"}`` line per judged query. A query
  whose text the file already holds keeps that line's id; a new one gets an
  id derived from its text (`judged_query_id`: ``judged-`` and 16 hex digits
  of the SHA-256 of the prepared text, whitespace runs made one space), so
  the same query always gets the same id.
- ``qrels/<split>.tsv``: the header row (written with the first judgement)
  and one ``query-id  corpus-id  score`` line per judgement.

De-duplication: the first judgement of a (query, document) pair stands; a
later one for the same pair is skipped and reported as such (`Judgement.written`
is False, `Judgement.grade` the grade on file), because BEIR qrels allow one
line per pair and the files are only appended to, never rewritten.

Existing files are validated before the service starts (`InputError`, exit
2, for the first defect): ``corpus.jsonl`` (when present, judged documents
must be in it too), ``queries.jsonl`` and every ``qrels/*.tsv`` with the
readers `domainfit bench` uses, so the folder stays one the next benchmark
reads. Every append is one whole-line write under a lock, fsynced
(`domainfit.core.append.AppendOnlyFile`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Container
from dataclasses import dataclass
from pathlib import Path

from domainfit.core.append import AppendOnlyFile
from domainfit.core.errors import InputError, UsageError
from domainfit.data.beir import QRELS_HEADER, check_qrels_header, parse_qrels_row, read_corpus, read_queries
from domainfit.data.checks import MAX_GRADE, check_id, id_problem, split_name_problem
from domainfit.data.jsonl import dumps_line, require_str
from domainfit.text.config import DEFAULT_TEXT, TextConfig

#: Prefix of the ids the page gives to queries it adds.
QUERY_ID_PREFIX = "judged-"


def judged_query_id(text: str) -> str:
    """Return the stable id of a (prepared) query text: ``judged-`` and 16 hex digits of its SHA-256."""
    return QUERY_ID_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class InvalidJudgement(ValueError):
    """A judgement that cannot be recorded (blank query, unknown document, grade out of range)."""


@dataclass(frozen=True)
class Judgement:
    """One judgement as the folder holds it: ids, the grade on file, and whether this call wrote it."""

    query_id: str
    query: str
    doc_id: str
    grade: int
    written: bool


def _same_query(text: str, settings: TextConfig) -> str:
    """Return the form of a query text judgements are keyed by: prepared, runs of whitespace made one space."""
    return " ".join(settings.prepare(text).split())


def _strip_bom(line: int, text: str) -> str:
    """Return ``text`` without a byte-order mark at the start of the file's first line."""
    return text.removeprefix("\ufeff") if line == 1 else text


class JudgementFolder:
    """The BEIR folder the page appends judgements to (``queries.jsonl`` and ``qrels/<split>.tsv``).

    Inputs: the folder (it need not exist; it is created with the first
    judgement), the split the judgements go to and the ``[text]`` settings
    query texts are prepared under (as bench reads them). Construction
    validates what the folder holds; raises `InputError` for a malformed
    file, `UsageError` for a bad split name or a folder path that is a file.
    Thread-safe; two services on the same folder append under a file lock.
    """

    def __init__(self, root: Path | str, split: str = "test", text: TextConfig = DEFAULT_TEXT) -> None:
        problem = split_name_problem(split)
        if problem is not None:
            raise UsageError(f"--judgements-split: {problem}")
        self.root = Path(root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"--judgements {self.root}: not a folder")
        self.split = split
        self.text = text
        self._lock = threading.Lock()
        self._by_text: dict[str, str] = {}
        self._query_text: dict[str, str] = {}
        self._grades: dict[tuple[str, str], int] = {}
        self.corpus_ids: frozenset[str] | None = None
        self.queries = AppendOnlyFile(self.root / "queries.jsonl", self._query_line)
        qrels = self.root / "qrels" / f"{split}.tsv"
        self.qrels = AppendOnlyFile(qrels, self._row_reader(qrels, record=True))
        self._validate()

    def _validate(self) -> None:
        """Read and check every BEIR file of the folder (`InputError` for the first defect)."""
        corpus = self.root / "corpus.jsonl"
        if corpus.exists():
            self.corpus_ids = frozenset(read_corpus(corpus, text=self.text))
        if self.queries.path.exists():
            read_queries(self.queries.path, text=self.text)  # the full check bench makes
        self.queries.scan()
        qrels_dir = self.qrels.path.parent
        if qrels_dir.exists() and not qrels_dir.is_dir():
            raise InputError(qrels_dir, 0, "-", "is not a folder (expected qrels/<split>.tsv files)")
        others = sorted(p for p in qrels_dir.glob("*.tsv") if p != self.qrels.path) if qrels_dir.is_dir() else []
        for path in others:
            AppendOnlyFile(path, self._row_reader(path, record=False)).scan()
        self.qrels.scan()

    def _query_line(self, line: int, text: str) -> None:
        """Record one line of ``queries.jsonl`` (its id and prepared text)."""
        text = _strip_bom(line, text)
        if not text.strip():
            return
        path = self.queries.path
        try:
            record = json.loads(text)
        except ValueError:
            raise InputError(path, line, "-", "invalid JSON") from None
        if not isinstance(record, dict):
            raise InputError(path, line, "-", f"expected a JSON object, got {type(record).__name__}")
        ident = check_id(require_str(record, "_id", path, line), path, line, "_id")
        if ident in self._query_text:
            raise InputError(path, line, "_id", f"duplicate id {ident!r}")
        prepared = _same_query(require_str(record, "text", path, line), self.text)
        self._query_text[ident] = prepared
        self._by_text.setdefault(prepared, ident)

    def _row_reader(self, path: Path, *, record: bool) -> Callable[[int, str], None]:
        """Return the line reader of a qrels file: header first, then rows of known queries (and documents)."""
        seen: set[tuple[str, str]] = set()

        def read(line: int, text: str) -> None:
            text = _strip_bom(line, text)
            if not text.strip():
                return
            cols = text.split("\t")
            if line == 1:
                check_qrels_header(path, line, text, cols)
                return
            qid, did, grade = parse_qrels_row(path, line, cols)
            if qid not in self._query_text:
                self.queries.scan()  # another service may have just added the query
            if qid not in self._query_text:
                raise InputError(path, line, "query-id", f"unknown query {qid!r} (not in queries.jsonl)")
            if self.corpus_ids is not None and did not in self.corpus_ids:
                raise InputError(path, line, "corpus-id", f"unknown document {did!r} (not in corpus.jsonl)")
            if (qid, did) in seen:
                raise InputError(path, line, "corpus-id", f"duplicate judgement for ({qid!r}, {did!r})")
            seen.add((qid, did))
            if record:
                self._grades[(qid, did)] = grade

        return read

    def _checked(self, query: str, doc_id: str, grade: int, known: Container[str] | None) -> str:
        """Return the prepared query text; `InvalidJudgement` for a blank query, a bad document or grade."""
        text = _same_query(query, self.text)
        if not text:
            raise InvalidJudgement("query: may not be blank")
        problem = id_problem(doc_id)
        if problem is not None:
            raise InvalidJudgement(f"doc_id: {problem}")
        if known is not None and doc_id not in known:
            raise InvalidJudgement(f"doc_id: {doc_id!r} is not a document of the index")
        if self.corpus_ids is not None and doc_id not in self.corpus_ids:
            raise InvalidJudgement(f"doc_id: {doc_id!r} is not in {self.root / 'corpus.jsonl'}")
        if abs(grade) > MAX_GRADE:
            raise InvalidJudgement(f"grade: must be between -{MAX_GRADE} and {MAX_GRADE}")
        return text

    def judge(self, query: str, doc_id: str, grade: int, known: Container[str] | None = None) -> Judgement:
        """Record that ``doc_id`` has relevance ``grade`` for ``query``; return what the folder now holds.

        ``known``: the document ids the judgement may name (the index's).
        Appends the query to ``queries.jsonl`` when it is new, then the
        judgement to ``qrels/<split>.tsv`` unless that pair is judged already
        (then nothing is written and the grade on file is returned). Raises
        `InvalidJudgement` for a blank query, a document not in ``known`` (or
        the folder's corpus) or a grade out of range, before writing anything.
        """
        text = self._checked(query, doc_id, grade, known)
        with self._lock:
            self.queries.append(lambda _empty: self._new_query_line(text))
            qid = self._by_text[text]

            def row(empty: bool) -> str | None:
                if (qid, doc_id) in self._grades:
                    return None
                line = f"{qid}\t{doc_id}\t{grade}\n"
                return "\t".join(QRELS_HEADER) + "\n" + line if empty else line

            written = self.qrels.append(row)
            return Judgement(qid, text, doc_id, self._grades[(qid, doc_id)], written)

    def _new_query_line(self, text: str) -> str | None:
        """Return the ``queries.jsonl`` line of a query the file does not hold yet (None when it does)."""
        if text in self._by_text:
            return None
        qid = judged_query_id(text)
        if qid in self._query_text:  # another text holds the id: 64 bits of SHA-256 collided
            raise InvalidJudgement(f"query: its id {qid} is already used by another query in queries.jsonl")
        return dumps_line({"_id": qid, "text": text})

    def grades(self, query: str) -> dict[str, int]:
        """Return {document id: grade} of the judgements on file for ``query`` (after reading new lines)."""
        text = _same_query(query, self.text)
        with self._lock:
            self.queries.scan()
            self.qrels.scan()
            qid = self._by_text.get(text)
            if qid is None:
                return {}
            return {did: g for (q, did), g in self._grades.items() if q == qid}

    def count(self) -> int:
        """Return the number of judgements of this split on file."""
        return len(self._grades)
