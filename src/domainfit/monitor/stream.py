"""Cutting the query log into the two windows drift compares: the reference (after promotion) and now.

The reference window is the first ``reference_size`` searches of the served
version since it was promoted (the pointer's ``created`` time); the current
window is the last ``current_size`` searches after the reference window, so
the two never share a search. Searches of other versions (a request naming
``model_version``, or the old version before a promotion) are left out: their
scores are another model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """Return an ISO 8601 time (``...Z`` accepted) as an aware datetime, or None when it is absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@dataclass(frozen=True)
class WindowSplit:
    """The two windows' records, how many log records were considered, and how many the log held."""

    reference: list[dict[str, Any]]
    current: list[dict[str, Any]]
    considered: int
    total: int

    def describe(self) -> str:
        """Return one line saying what was compared."""
        return (
            f"{len(self.reference)} reference and {len(self.current)} current searches "
            f"(of {self.considered} of the served version since promotion; {self.total} in the log)"
        )


def split_windows(
    records: Sequence[dict[str, Any]],
    *,
    reference_size: int,
    current_size: int,
    version: str | None = None,
    since: str | None = None,
) -> WindowSplit:
    """Split query-log records into the reference and the current window.

    Inputs: the records in log order; the windows' sizes; the served version
    (None: every record counts) and the promotion time (records before it are
    left out; None or unreadable: no cut). Output: a `WindowSplit`; a window
    may be shorter than asked (or empty) when the log is.
    """
    start = parse_time(since)
    kept = []
    for record in records:
        if version is not None and record.get("version") not in (None, version):
            continue
        if start is not None:
            when = parse_time(record.get("time"))
            if when is not None and when < start:
                continue
        kept.append(record)
    reference = kept[:reference_size]
    rest = kept[reference_size:]
    current = rest[-current_size:] if current_size > 0 else []
    return WindowSplit(reference, current, len(kept), len(records))
