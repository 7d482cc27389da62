"""Reading what monitoring compares: the service's query log, and the user's canary list, validated line by line.

Both are JSON Lines; every problem raises `InputError` naming the file, the
line and the field, before any model loads. A last line of the query log
that is not JSON and has no newline is a line the service was writing when it
stopped, and is skipped (the query log's own rule, `domainfit.serve.querylog`).

Canary list format, one object per line::

    {"id": "c1", "query": "reset my password", "relevant": ["d002"]}
    {"query": "refund a payment", "relevant": {"d005": 2, "d006": 1}}

``id`` is optional (default ``canary-<line>``); ``relevant`` is a list of
document ids (grade 1) or an object of ids to positive integer grades.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domainfit.core.errors import InputError
from domainfit.core.types import Qrels
from domainfit.data.jsonl import MAX_LINE_BYTES, iter_jsonl, iter_lines, require_str


def _ends_with_newline(path: Path) -> bool:
    """Return True when the file is empty or its last byte is a newline."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return True
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def _check_record(record: Any, path: Path, number: int) -> dict[str, Any]:
    """Return a query-log record after checking the fields monitoring reads (``query``, ``scores``, ``version``)."""
    if not isinstance(record, dict):
        raise InputError(path, number, "-", f"expected a JSON object, got {type(record).__name__}")
    require_str(record, "query", path, number)
    scores = record.get("scores")
    if not isinstance(scores, list):
        raise InputError(path, number, "scores", "missing or not a list of numbers")
    for i, score in enumerate(scores):
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise InputError(path, number, f"scores.{i}", f"must be a finite number, got {score!r:.40}")
    ids = record.get("ids")
    if ids is not None and (not isinstance(ids, list) or len(ids) != len(scores)):
        raise InputError(path, number, "ids", "must be a list as long as scores")
    for key in ("version", "time"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise InputError(path, number, key, f"must be a string, got {type(record[key]).__name__}")
    return record


def read_query_log(path: Path | str, max_line_bytes: int = MAX_LINE_BYTES) -> list[dict[str, Any]]:
    """Return every search record of a service query log, in file order.

    Inputs: the log's path and the largest accepted line. Output: the records
    (dicts with at least ``query`` and ``scores``). Raises `InputError`
    (file:line: field) for a missing file, a line that is not a JSON object or
    a record whose ``query``, ``scores``, ``ids``, ``version`` or ``time`` is malformed.
    """
    path = Path(path)
    lines = list(iter_lines(path, max_line_bytes))
    torn = not _ends_with_newline(path)
    records: list[dict[str, Any]] = []
    for position, (number, text) in enumerate(lines):
        try:
            record = json.loads(text)
        except ValueError as exc:
            if torn and position == len(lines) - 1:
                break  # the line being written when the service stopped
            raise InputError(path, number, "-", f"invalid JSON ({str(exc).split(':')[0]})") from None
        records.append(_check_record(record, path, number))
    return records


@dataclass(frozen=True)
class CanarySet:
    """Canary queries: their texts and the documents each must find (ordinary qrels)."""

    queries: dict[str, str]
    qrels: Qrels

    def __len__(self) -> int:
        """Return the number of canary queries."""
        return len(self.queries)

    def merged(self, other: CanarySet) -> CanarySet:
        """Return both sets together (``other``'s entries win on an equal id)."""
        return CanarySet({**self.queries, **other.queries}, {**self.qrels, **other.qrels})


def _relevant(value: Any, path: Path, number: int) -> dict[str, int]:
    """Return the graded relevant documents of one canary line (list of ids, or ids to positive grades)."""
    if isinstance(value, list) and value and all(isinstance(d, str) and d for d in value):
        return dict.fromkeys(value, 1)
    if isinstance(value, dict) and value:
        grades: dict[str, int] = {}
        for doc, grade in value.items():
            if isinstance(grade, bool) or not isinstance(grade, int) or grade < 1:
                raise InputError(path, number, f"relevant.{doc}", f"grade must be a positive integer, got {grade!r}")
            grades[str(doc)] = grade
        return grades
    raise InputError(path, number, "relevant", "must be a non-empty list of document ids or an object of id: grade")


def read_canaries(path: Path | str, max_line_bytes: int = MAX_LINE_BYTES) -> CanarySet:
    """Read a canary list (see the module's docstring); `InputError` with file:line: field on a bad line or none."""
    path = Path(path)
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    for number, record in iter_jsonl(path, max_line_bytes):
        qid = require_str(record, "id", path, number, required=False) or f"canary-{number}"
        if qid in queries:
            raise InputError(path, number, "id", f"{qid!r} is listed twice")
        queries[qid] = require_str(record, "query", path, number)
        qrels[qid] = _relevant(record.get("relevant"), path, number)
    if not queries:
        raise InputError(path, 0, "-", "the canary list holds no query")
    return CanarySet(queries, qrels)
