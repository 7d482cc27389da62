"""Search logs with clicks as training pairs.

A log is JSONL, one search (impression) per line::

    {"query": "reset 2fa", "shown": ["d7", "d2", "d9"], "clicked": ["d9"],
     "dwell": 42.5, "timestamp": "2024-05-01T10:00:00Z", "session": "s-81"}

``query``, ``shown`` (document ids in ranked order) and ``clicked`` (ids,
possibly none) are required; ``dwell`` (seconds: one number for every click, an
object ``{doc_id: seconds}`` or a list parallel to ``clicked``), ``timestamp``
and ``session`` are optional. Every defect raises `InputError` as
``file:line: field: message``; unknown document ids included.

Turning impressions into pairs:

* a click is a positive, unless ``min_dwell`` is set and its dwell is shorter
  (a click without a dwell counts);
* the documents shown above a click and not clicked in that impression are
  its skip-above negatives;
* repeated searches of one query in one session count once (their clicks and
  skips are merged);
* a (query, document) pair needs ``min_clicks`` clicks over the sessions; its
  weight is its click count and a document clicked for the query is never its negative.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from domainfit.core.errors import InputError
from domainfit.data.checks import check_id
from domainfit.data.jsonl import MAX_LINE_BYTES, iter_jsonl, require_str
from domainfit.data.splits import normalise_text
from domainfit.synth.base import SyntheticQuery
from domainfit.text.config import DEFAULT_TEXT, TextConfig


@dataclass(frozen=True)
class Impression:
    """One validated search: where it is in the log, what was shown and clicked, and how long each click lasted."""

    line: int
    query: str
    shown: tuple[str, ...]
    clicked: tuple[str, ...]
    dwell: dict[str, float]
    session: str | None = None
    timestamp: str | float | None = None


@dataclass
class ClickStats:
    """What turning a log into pairs counted (written into the synth summary)."""

    impressions: int = 0
    merged_repeats: int = 0
    clicks: int = 0
    short_dwell_clicks: int = 0
    pairs: int = 0
    below_min_clicks: int = 0
    kept_pairs: int = 0
    negatives: int = 0

    def to_json(self) -> dict[str, int]:
        """Return the counts as a dict."""
        return asdict(self)


def _id_list(record: dict[str, Any], key: str, path: Path, line: int, known: set[str] | dict[str, Any]) -> list[str]:
    """Return ``record[key]`` as a list of known document ids."""
    value = record.get(key)
    if value is None:
        raise InputError(path, line, key, "missing")
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(path, line, key, f"must be a list of document ids, got {value!r:.60}")
    for doc_id in value:
        check_id(doc_id, path, line, key)
        if doc_id not in known:
            raise InputError(path, line, key, f"unknown document {doc_id!r} (not in corpus.jsonl)")
    return value


def _seconds(value: Any, path: Path, line: int) -> float:
    """Return a dwell time: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InputError(path, line, "dwell", f"must be seconds (a number >= 0), got {value!r:.40}")
    return float(value)


def _dwell(record: dict[str, Any], clicked: list[str], path: Path, line: int) -> dict[str, float]:
    """Return ``{clicked doc: seconds}`` from a number, an object or a list parallel to ``clicked``."""
    value = record.get("dwell")
    if value is None:
        return {}
    if isinstance(value, dict):
        extra = sorted(set(value) - set(clicked))
        if extra:
            raise InputError(path, line, "dwell", f"has a time for {extra[0]!r}, which was not clicked")
        return {doc: _seconds(v, path, line) for doc, v in value.items()}
    if isinstance(value, list):
        if len(value) != len(clicked):
            raise InputError(path, line, "dwell", f"has {len(value)} times for {len(clicked)} clicks")
        return {doc: _seconds(v, path, line) for doc, v in zip(clicked, value, strict=True)}
    seconds = _seconds(value, path, line)
    return dict.fromkeys(clicked, seconds)


def _optional(record: dict[str, Any], key: str, path: Path, line: int) -> str | float | None:
    """Return an optional ``session`` / ``timestamp``: a string or a number (a session becomes a string)."""
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(path, line, key, f"must be a string or a number, got {type(value).__name__}")
    if key == "session":
        return str(value)
    return value


def parse_impression(record: dict[str, Any], path: Path, line: int, known: set[str] | dict[str, Any]) -> Impression:
    """Validate one log record against the corpus ids ``known``; raise `InputError` (file:line: field) on a defect."""
    query = " ".join(require_str(record, "query", path, line).split())
    shown = _id_list(record, "shown", path, line, known)
    if not shown:
        raise InputError(path, line, "shown", "is empty")
    clicked = _id_list(record, "clicked", path, line, known)
    for doc_id in clicked:
        if doc_id not in shown:
            raise InputError(path, line, "clicked", f"document {doc_id!r} was clicked but not shown")
    session = _optional(record, "session", path, line)
    return Impression(
        line=line,
        query=query,
        shown=tuple(shown),
        clicked=tuple(dict.fromkeys(clicked)),
        dwell=_dwell(record, clicked, path, line),
        session=None if session is None else str(session),
        timestamp=_optional(record, "timestamp", path, line),
    )


def read_click_log(
    path: Path, known: set[str] | dict[str, Any], max_line_bytes: int = MAX_LINE_BYTES
) -> list[Impression]:
    """Read and validate a click log; ``known`` holds the corpus document ids. Raises `InputError` on any defect."""
    impressions = [parse_impression(record, path, line, known) for line, record in iter_jsonl(path, max_line_bytes)]
    if not impressions:
        raise InputError(path, 0, "-", "no searches in the click log")
    return impressions


@dataclass
class _Group:
    """The merged impressions of one (session, query): satisfied clicks and skip-above documents per click."""

    clicked: dict[str, None] = field(default_factory=dict)
    skipped: dict[str, dict[str, None]] = field(default_factory=dict)


def _group(impressions: list[Impression], min_dwell: float | None, stats: ClickStats) -> dict[tuple[str, ...], _Group]:
    """Merge impressions by (session, normalised query); log lines without a session stay separate."""
    groups: dict[tuple[str, ...], _Group] = {}
    for imp in impressions:
        norm = normalise_text(imp.query)
        key = ("session", imp.session, norm) if imp.session is not None else ("line", str(imp.line), norm)
        if key in groups:
            stats.merged_repeats += 1
        group = groups.setdefault(key, _Group())
        stats.clicks += len(imp.clicked)
        clicked = set(imp.clicked)
        for doc_id in imp.clicked:
            dwell = imp.dwell.get(doc_id)
            if min_dwell is not None and dwell is not None and dwell < min_dwell:
                stats.short_dwell_clicks += 1
                continue
            group.clicked.setdefault(doc_id, None)
            above = imp.shown[: imp.shown.index(doc_id)]
            group.skipped.setdefault(doc_id, {}).update(dict.fromkeys(d for d in above if d not in clicked))
    return groups


def click_pairs(
    impressions: list[Impression],
    *,
    min_clicks: int = 1,
    min_dwell: float | None = None,
    skip_above: bool = True,
    max_negatives: int = 8,
    text: TextConfig = DEFAULT_TEXT,
) -> tuple[list[SyntheticQuery], ClickStats]:
    """Turn validated impressions into weighted (query, clicked document) pairs with skip-above negatives.

    Output: one `SyntheticQuery` (source ``clicks``) per (query, document)
    with at least ``min_clicks`` session-deduplicated clicks, weight = click
    count, ``negatives`` = the documents most often skipped above it (at most
    ``max_negatives``, never a document clicked for the query); in order of
    first appearance in the log, texts prepared under ``text``. Also the `ClickStats`.
    """
    stats = ClickStats(impressions=len(impressions))
    text_of: dict[str, str] = {}
    for imp in impressions:
        text_of.setdefault(normalise_text(imp.query), imp.query)
    clicks: dict[str, Counter[str]] = {}
    skips: dict[tuple[str, str], Counter[str]] = {}
    for key, group in _group(impressions, min_dwell, stats).items():
        norm = key[2]
        counter = clicks.setdefault(norm, Counter())
        for doc_id in group.clicked:
            counter[doc_id] += 1
            skips.setdefault((norm, doc_id), Counter()).update(list(group.skipped.get(doc_id, {})))
    pairs: list[SyntheticQuery] = []
    for norm, counter in clicks.items():
        for doc_id, count in counter.items():
            stats.pairs += 1
            if count < min_clicks:
                stats.below_min_clicks += 1
                continue
            skipped = skips.get((norm, doc_id), Counter())
            # most skipped first; ties keep the order first seen (sorted is stable)
            ranked = sorted((d for d in skipped if d not in counter), key=skipped.__getitem__, reverse=True)
            negatives = ranked[:max_negatives] if skip_above else []
            stats.negatives += len(negatives)
            pairs.append(
                SyntheticQuery(
                    text_of[norm],
                    doc_id,
                    "clicks",
                    negatives=negatives,
                    weight=float(count),
                    metadata={"clicks": count, "skips": {d: skipped[d] for d in negatives}},
                    settings=text,
                )
            )
    stats.kept_pairs = len(pairs)
    return pairs, stats
