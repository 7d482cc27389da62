"""Time-decayed scores: newer documents win among otherwise similar ones.

The factor of a document of age ``a`` days is ``0.5 ** (a / half_life)``: 1 for a
document as new as the reference time, 0.5 at one half-life, 0.25 at two. Two ways
to apply it (`TimeDecayConfig.mode`):

* ``multiplicative`` (default): ``score * factor``. Negative scores are clipped to
  0 first, so that decaying never raises a score. A document one half-life old needs
  twice the similarity of a new one to tie with it.
* ``additive``: ``score + weight * factor``, a bounded recency bonus; with a small
  ``weight`` it reorders near-duplicates (versions of one document) but not
  documents whose similarity differs clearly.

Dates are ISO 8601 strings (``2024-03-01`` or ``2024-03-01T12:00:00+02:00``);
a date without a time zone is taken as UTC. Documents dated after the reference
time count as age 0. Documents without a date follow the ``missing`` policy:
``oldest`` (as old as the oldest dated document), ``no-decay`` (factor 1) or
``drop`` (removed from the run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

from domainfit.core.types import Document, Query, Run

DecayMode = Literal["multiplicative", "additive"]
MissingPolicy = Literal["oldest", "no-decay", "drop"]
_DAY_SECONDS = 86400.0


def parse_date(value: Any) -> dt.datetime | None:
    """Parse one date value into an aware UTC datetime.

    Input: an ISO 8601 date or date-time string (``Z`` accepted), a `datetime.date`
    or `datetime.datetime`, or None/"" (no date). Output: the datetime, or None
    when there is no date. Raises `ValueError` for anything else.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r:.40} is not an ISO date (YYYY-MM-DD)") from None
    else:
        raise ValueError(f"{value!r:.40} is not an ISO date string")
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed.astimezone(dt.timezone.utc)


class RecordError(ValueError):
    """A value of one record (document or query) is not usable; names the record and its field."""

    def __init__(self, what: str, record_id: str, field: str, reason: str) -> None:
        super().__init__(f"{what} {record_id!r}: {field}: {reason}")
        self.record_id, self.field, self.reason = record_id, field, reason


def document_dates(corpus: Mapping[str, Document], date_field: str) -> dict[str, dt.datetime | None]:
    """Read the date of every document from its metadata.

    Inputs: the corpus and the metadata field holding the date. Output:
    ``{doc_id: datetime or None}``. Raises `ValueError` naming the document on a
    value that is not a date.
    """
    out: dict[str, dt.datetime | None] = {}
    for did, doc in corpus.items():
        try:
            out[did] = parse_date(doc.metadata.get(date_field))
        except ValueError as exc:
            raise RecordError("document", did, date_field, str(exc)) from None
    return out


def query_reference_times(
    queries: Mapping[str, Query],
    default: dt.datetime,
    query_date_field: str | None = None,
) -> dict[str, dt.datetime]:
    """Return the reference time of every query: its own date when it has one, else ``default``.

    Inputs: queries, the fallback reference time and the query metadata field
    holding a query's date (None: every query uses ``default``). Raises
    `ValueError` naming the query on a value that is not a date.
    """
    out: dict[str, dt.datetime] = {}
    for qid, query in queries.items():
        own = None
        if query_date_field:
            try:
                own = parse_date(query.metadata.get(query_date_field))
            except ValueError as exc:
                raise RecordError("query", qid, query_date_field, str(exc)) from None
        out[qid] = own or default
    return out


def decay_factor(age_days: float, half_life_days: float) -> float:
    """Return ``0.5 ** (age / half_life)``; negative ages (future documents) count as 0.

    Raises `ValueError` when the half-life is not positive.
    """
    if not half_life_days > 0:
        raise ValueError(f"half-life must be > 0 days, got {half_life_days}")
    return float(0.5 ** (max(age_days, 0.0) / half_life_days))


def apply_time_decay(
    run: Run,
    dates: Mapping[str, dt.datetime | None],
    reference: dt.datetime | Mapping[str, dt.datetime],
    half_life_days: float,
    *,
    mode: DecayMode = "multiplicative",
    weight: float = 0.1,
    missing: MissingPolicy = "oldest",
) -> Run:
    """Decay every score of a run with the age of its document.

    Inputs: the run, ``{doc_id: date or None}`` (documents absent from it have no
    date), the reference time (one for all queries, or one per query id), the
    half-life in days, the mode and additive ``weight`` (see the module docstring)
    and the policy for documents without a date.
    Output: a new run with the decayed scores (same documents, minus dropped ones).
    """
    if not half_life_days > 0:
        raise ValueError(f"half-life must be > 0 days, got {half_life_days}")
    dated = [d for d in dates.values() if d is not None]
    oldest = min(dated) if dated else None
    out: Run = {}
    for qid, scores in run.items():
        ref = reference if isinstance(reference, dt.datetime) else reference[qid]
        decayed: dict[str, float] = {}
        for doc, score in scores.items():
            when = dates.get(doc)
            if when is None:
                if missing == "drop":
                    continue
                when = oldest if missing == "oldest" else None
            factor = 1.0 if when is None else decay_factor((ref - when).total_seconds() / _DAY_SECONDS, half_life_days)
            decayed[doc] = max(score, 0.0) * factor if mode == "multiplicative" else score + weight * factor
        out[qid] = decayed
    return out
