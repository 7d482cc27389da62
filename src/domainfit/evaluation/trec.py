"""Read and write TREC run and qrels files.

A run file has six whitespace-separated columns per line,
``query_id Q0 doc_id rank score tag``; a qrels file has four,
``query_id iteration doc_id grade``. Both are what trec_eval reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from domainfit.core.errors import InputError
from domainfit.core.files import atomic_write_text
from domainfit.core.types import Qrels, Run
from domainfit.evaluation.metrics import rank_documents


def _check_token(value: str, what: str) -> None:
    """Raise `ValueError` unless ``value`` can be one column of a TREC line."""
    if not value or any(ch.isspace() for ch in value):
        raise ValueError(f"{what} {value!r} is empty or contains whitespace")


def write_trec_run(path: Path, run: Run, tag: str, depth: int | None = None) -> None:
    """Write a run as a TREC run file, atomically.

    Inputs: the destination path, the run ``{query_id: {doc_id: score}}``, the
    run tag (last column) and an optional depth (keep each query's top ``depth``
    documents).
    Output: none; the file holds one ``qid Q0 docid rank score tag`` line per
    document, queries in sorted order, documents ranked as trec_eval ranks them
    (score descending, ties by doc id descending), ranks from 1, scores written
    with full float precision. Queries with no documents produce no line.
    Raises `ValueError` for an id or tag with whitespace, a NaN score or a
    depth below 1.
    """
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    _check_token(tag, "tag")
    lines: list[str] = []
    for qid in sorted(run):
        _check_token(qid, "query id")
        ranked = rank_documents(run[qid])
        if depth is not None:
            ranked = ranked[:depth]
        for rank, (doc_id, score) in enumerate(ranked, start=1):
            _check_token(doc_id, "document id")
            lines.append(f"{qid} Q0 {doc_id} {rank} {score!r} {tag}\n")
    atomic_write_text(Path(path), "".join(lines))


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, columns)`` for each non-blank line of a text file.

    Raises `InputError` when the file cannot be read as UTF-8.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, 0, "-", "file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, 0, "-", f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InputError(path, 0, "-", f"cannot read the file ({exc.strerror})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        columns = line.split()
        if columns:
            yield number, columns


def read_trec_run(path: Path) -> Run:
    """Read a TREC run file.

    Input: the path of a file of ``qid Q0 docid rank score tag`` lines (blank
    lines are skipped; the Q0, rank and tag columns are not used, as in trec_eval).
    Output: the run ``{query_id: {doc_id: score}}``.
    Raises `InputError` (file, line, field, message) for a line without exactly
    six columns, a non-integer rank, a non-numeric or NaN score, or a document
    listed twice for the same query.
    """
    run: Run = {}
    for number, columns in _lines(path):
        if len(columns) != 6:
            raise InputError(
                path,
                number,
                "line",
                f"expected 6 columns (qid Q0 docid rank score tag), got {len(columns)}",
            )
        qid, _, doc_id, rank, score_text, _ = columns
        try:
            int(rank)
        except ValueError:
            raise InputError(path, number, "rank", f"not an integer: {rank!r}") from None
        try:
            score = float(score_text)
        except ValueError:
            raise InputError(path, number, "score", f"not a number: {score_text!r}") from None
        if math.isnan(score):
            raise InputError(path, number, "score", "NaN is not a valid score")
        docs = run.setdefault(qid, {})
        if doc_id in docs:
            raise InputError(path, number, "docid", f"{doc_id!r} appears twice for query {qid!r}")
        docs[doc_id] = score
    return run


def write_trec_qrels(path: Path, qrels: Qrels) -> None:
    """Write qrels as a TREC qrels file, atomically.

    Inputs: the destination path and the qrels ``{query_id: {doc_id: grade}}``.
    Output: none; the file holds one ``qid 0 docid grade`` line per judgement,
    queries and documents in sorted order.
    Raises `ValueError` for an id with whitespace.
    """
    lines: list[str] = []
    for qid in sorted(qrels):
        _check_token(qid, "query id")
        for doc_id in sorted(qrels[qid]):
            _check_token(doc_id, "document id")
            lines.append(f"{qid} 0 {doc_id} {int(qrels[qid][doc_id])}\n")
    atomic_write_text(Path(path), "".join(lines))


def read_trec_qrels(path: Path) -> Qrels:
    """Read a TREC qrels file.

    Input: the path of a file of ``qid iteration docid grade`` lines (blank lines
    skipped, the iteration column unused).
    Output: the qrels ``{query_id: {doc_id: grade}}``.
    Raises `InputError` for a line without exactly four columns, a non-integer
    grade, or a document judged twice for the same query.
    """
    qrels: Qrels = {}
    for number, columns in _lines(path):
        if len(columns) != 4:
            raise InputError(
                path,
                number,
                "line",
                f"expected 4 columns (qid iter docid grade), got {len(columns)}",
            )
        qid, _, doc_id, grade_text = columns
        try:
            grade = int(grade_text)
        except ValueError:
            raise InputError(path, number, "grade", f"not an integer: {grade_text!r}") from None
        docs = qrels.setdefault(qid, {})
        if doc_id in docs:
            raise InputError(path, number, "docid", f"{doc_id!r} is judged twice for query {qid!r}")
        docs[doc_id] = grade
    return qrels
