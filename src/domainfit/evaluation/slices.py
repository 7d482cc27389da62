"""Per-slice score tables: how a model does on short queries, on identifiers, per family.

A *slice* is a way to split the queries (``length``, ``identifier``, or any
query metadata field); each query has one *value* per slice. `slice_table`
averages per-query metric scores over the queries sharing a value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from domainfit.core.types import Query

NONE_VALUE = "(none)"
"""The value of a slice for a query that has no value for it."""

ALL_SLICE = "all"
"""Slice (and value) name of the row that covers every evaluated query."""

LENGTH_BUCKETS: tuple[tuple[int, str], ...] = ((2, "1-2"), (5, "3-5"), (10, "6-10"))
"""Upper bound (inclusive) in words and label of each length bucket; longer is ``11+``."""

BUILTIN_SLICES = ("length", "identifier")
"""Names of the slices computed from the query text."""

# Characters stripped from both ends of a whitespace token before matching:
# quotes and brackets around it, sentence punctuation after it.
_STRIP_LEADING = "\"'`([{<«“‘"
_STRIP_TRAILING = "\"'`)]}>»”’,;:!?."

_IDENTIFIER_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        # snake_case, SCREAMING_SNAKE, ERR_AUTH_702, __init__
        r"^_*[A-Za-z0-9]+(?:_+[A-Za-z0-9]+)+_*$|^__[A-Za-z0-9]+__$",
        # camelCase / CamelCase (a lower-case letter or digit followed by a capital)
        r"^[A-Za-z][A-Za-z0-9]*[a-z0-9][A-Z][A-Za-z0-9]*$",
        # acronym followed by a word: HTTPServer, XMLHttpRequest
        r"^[A-Z]{2,}[a-z]{2,}[A-Za-z0-9]*$",
        # dotted names whose parts are all 2+ characters: os.path.join, config.yaml
        # (so that e.g, i.e, U.S and Ph.D are not identifiers)
        r"^[A-Za-z_][A-Za-z0-9_]+(?:\.[A-Za-z_][A-Za-z0-9_]+)+(?:\(\))?$",
        # versions: v2, v2.3.1, 3.11, 1.0.0-beta
        r"^[vV]\d+(?:\.\d+)*(?:[-+][A-Za-z0-9.]+)?$|^\d+(?:\.\d+)+(?:[-+][A-Za-z0-9.]+)?$",
        # codes mixing letters and digits: A12B, E1101, 0x1F, sha256, 12AB
        r"^(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{2,}$",
        # upper-case prefix, hyphen, number: ISO-8601, UTF-8, SHA-256, COVID-19
        r"^[A-Z][A-Z0-9]+(?:-[A-Z0-9]+)*-\d[A-Za-z0-9.]*$",
        # command-line flags: --flag, --dry-run, --k=10, -v
        r"^--[A-Za-z][A-Za-z0-9_-]*(?:=\S*)?$|^-[A-Za-z]$",
        # calls: len(), np.dot(a,b)
        r"^[A-Za-z_][A-Za-z0-9_.]*\([^()\s]*\)$",
        # environment variables and paths: $HOME, /etc/hosts, ~/.bashrc, ./run.sh
        r"^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$|^(?:~|\.{1,2})?/[\w.-]+(?:/[\w.-]*)*$",
    )
)

# Numbers with an ordinal, plural or unit suffix are prose, not codes: 1st, 1990s, 10mb.
_NUMBER_WITH_SUFFIX = re.compile(
    r"^\d+(?:st|nd|rd|th|s|k|m|b|x|d|g|kb|mb|gb|tb|ms|px|pm|am|km|cm|mm|kg|hz|fps|bit|p)$",
    re.IGNORECASE,
)


# Mixed-case words of ordinary prose that the camelCase pattern would catch.
_MIXED_CASE_WORDS = re.compile(r"^(?:Ph\.?Ds?|Ma?c[A-Z][a-z]+(?:'s)?)$")


def _strip_token(token: str) -> str:
    """Strip surrounding quotes, brackets and trailing punctuation from one token.

    A closing parenthesis that balances one inside the token is kept (``len()``).
    """
    core = token.lstrip(_STRIP_LEADING)
    while core and core[-1] in _STRIP_TRAILING:
        if core[-1] == ")" and core.count("(") >= core.count(")"):
            break
        core = core[:-1]
    for suffix in ("'s", "’s"):  # possessive: ERR_AUTH_702's
        if core.endswith(suffix):
            core = core[: -len(suffix)]
    return core


def is_identifier_token(token: str) -> bool:
    """Tell whether one whitespace-free token looks like a code identifier.

    Input: a token (surrounding quotes, brackets and punctuation are ignored).
    Output: True for snake_case, camelCase, dotted.names, versions (v2.3.1,
    3.11), letter-digit codes (A12B), ISO-8601-style codes, --flags, calls,
    $VARS and paths; False for plain words, acronyms, numbers, ordinals (1st),
    decades (1990s) and units (10mb).
    """
    core = _strip_token(token)
    if not core or _NUMBER_WITH_SUFFIX.match(core) or _MIXED_CASE_WORDS.match(core):
        return False
    return any(p.match(core) for p in _IDENTIFIER_PATTERNS)


def has_identifier(text: str) -> bool:
    """Tell whether a query contains at least one identifier-like token.

    Input: the query text. Output: True when any whitespace-separated token
    passes `is_identifier_token`.
    """
    return any(is_identifier_token(tok) for tok in text.split())


def length_bucket(text: str) -> str:
    """Return the length bucket of a query: ``1-2``, ``3-5``, ``6-10`` or ``11+`` words.

    Input: the query text; words are whitespace-separated tokens (an empty query
    falls in ``1-2``). Output: the bucket label.
    """
    n_words = len(text.split())
    for upper, label in LENGTH_BUCKETS:
        if n_words <= upper:
            return label
    return "11+"


def builtin_slices(text: str) -> dict[str, str]:
    """Compute the slices that come from the query text alone.

    Input: the query text.
    Output: ``{"length": bucket, "identifier": "yes" | "no"}`` (see `length_bucket`
    and `has_identifier`).
    """
    return {"length": length_bucket(text), "identifier": "yes" if has_identifier(text) else "no"}


def _is_scalar(value: Any) -> bool:
    """Tell whether a metadata value is a scalar (str, number, bool or None)."""
    return value is None or isinstance(value, (str, int, float, bool))


def _label(value: Any) -> str:
    """Render a metadata value as a slice value (None and "" become ``(none)``)."""
    if value is None or value == "":
        return NONE_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _scalar_fields(queries: Iterable[Query]) -> list[str]:
    """Return the metadata fields whose values are scalar in every query, first-seen order."""
    seen: dict[str, bool] = {}
    for query in queries:
        for name, value in query.metadata.items():
            seen[name] = seen.get(name, True) and _is_scalar(value)
    return [name for name, scalar in seen.items() if scalar]


def _slice_name(field_name: str) -> str:
    """Name of the slice for a metadata field (prefixed when it clashes with a builtin)."""
    return f"metadata.{field_name}" if field_name in BUILTIN_SLICES else field_name


def slice_labels(queries: Mapping[str, Query], fields: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
    """Label every query with its value for each slice.

    Inputs: ``{query_id: Query}`` and the metadata fields to slice on (None:
    every field whose values are all scalar; ``[]``: builtin slices only).
    Output: ``{query_id: {slice_name: value}}`` with the builtin slices
    (``length``, ``identifier``) followed by one slice per field. A missing,
    None or empty value becomes ``(none)``; a non-scalar value of an explicitly
    listed field is rendered as JSON. A field named like a builtin slice is
    reported as ``metadata.<field>``.
    """
    names = _scalar_fields(queries.values()) if fields is None else list(dict.fromkeys(fields))
    labels: dict[str, dict[str, str]] = {}
    for qid, query in queries.items():
        row = builtin_slices(query.text)
        for name in names:
            row[_slice_name(name)] = _label(query.metadata.get(name))
        labels[qid] = row
    return labels


@dataclass
class SliceRow:
    """One row of a slice table.

    Fields: the slice name (``all`` for the overall row), its value, the number
    of evaluated queries with that value, and ``{metric: mean score}`` over them.
    """

    slice: str
    value: str
    n_queries: int
    scores: dict[str, float] = field(default_factory=dict)


def _value_order(slice_name: str, value: str) -> tuple[int, int, str]:
    """Sort key for the values of a slice: natural bucket order, ``(none)`` last."""
    if value == NONE_VALUE:
        return (2, 0, value)
    if slice_name == "length":
        order = [label for _, label in LENGTH_BUCKETS] + ["11+"]
        if value in order:
            return (0, order.index(value), value)
    return (1, 0, value)


def _row(slice_name: str, value: str, qids: Sequence[str], scores: Mapping[str, Mapping[str, float]]) -> SliceRow:
    """Average each metric over ``qids`` (the queries that have a score for it)."""
    means: dict[str, float] = {}
    for metric, by_query in scores.items():
        values = [by_query[q] for q in qids if q in by_query]
        means[metric] = math.fsum(values) / len(values) if values else math.nan
    return SliceRow(slice=slice_name, value=value, n_queries=len(qids), scores=means)


def slice_table(
    per_query_scores: Mapping[str, Mapping[str, float]],
    labels: Mapping[str, Mapping[str, str]],
) -> list[SliceRow]:
    """Average per-query scores per slice value.

    Inputs: ``{metric: {query_id: score}}`` (as `metrics.per_query` returns; its
    queries are the evaluated ones) and ``{query_id: {slice: value}}`` (as
    `slice_labels` returns).
    Output: the ``all`` row (every evaluated query, labelled or not), then for
    each slice, in first-seen order, one row per value (length buckets in
    natural order, other values sorted, ``(none)`` last). An evaluated query
    with no label for a slice counts under ``(none)`` there; labels of queries
    that were not evaluated are ignored. A metric with no score in a row
    averages to NaN.
    """
    evaluated = sorted({qid for by_query in per_query_scores.values() for qid in by_query})
    rows = [_row(ALL_SLICE, ALL_SLICE, evaluated, per_query_scores)]
    slice_names = list(dict.fromkeys(name for qid in evaluated for name in labels.get(qid, {})))
    for name in slice_names:
        groups: dict[str, list[str]] = {}
        for qid in evaluated:
            groups.setdefault(labels.get(qid, {}).get(name, NONE_VALUE), []).append(qid)
        for value in sorted(groups, key=partial(_value_order, name)):
            rows.append(_row(name, value, groups[value], per_query_scores))
    return rows
