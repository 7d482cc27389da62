"""A window of the query stream: what the drift statistics compare between a reference and now.

A `QueryWindow` holds, per search, the query text, the scores it returned (best
first; none for an empty answer) and, when the caller has embedded the texts,
the query embedding. `window_from_records` builds one from query-log records
(the service's JSON lines, as dicts: ``query``, ``scores``, ``ids``); the
embeddings come from whoever holds the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class QueryWindow:
    """The searches of one time window.

    Fields: ``texts`` (one per search), ``scores`` (one tuple per search, best
    first, empty when nothing was returned) and ``embeddings`` (an ``(n, d)``
    float array in the same order, or None).
    Use `checked` to validate shapes; the statistics read the derived arrays
    below.
    """

    texts: tuple[str, ...]
    scores: tuple[tuple[float, ...], ...]
    embeddings: np.ndarray | None = None

    def checked(self) -> QueryWindow:
        """Return self after checking that texts, scores and embeddings line up.

        Raises `ValueError` naming the mismatch, or a non-finite score.
        """
        if len(self.scores) != len(self.texts):
            raise ValueError(f"{len(self.texts)} query texts but {len(self.scores)} score lists")
        if self.embeddings is not None:
            if self.embeddings.ndim != 2 or self.embeddings.shape[0] != len(self.texts):
                raise ValueError(f"embeddings of shape {self.embeddings.shape} for {len(self.texts)} queries")
            if not np.isfinite(self.embeddings).all():
                raise ValueError("the embeddings hold a NaN or an infinity")
        if any(not np.isfinite(s) for row in self.scores for s in row):
            raise ValueError("a score is NaN or infinite")
        return self

    def __len__(self) -> int:
        """Return the number of searches."""
        return len(self.texts)

    def empty(self, min_score: float | None = None) -> np.ndarray:
        """Per search, True when it returned nothing (or, given ``min_score``, nothing at or above it)."""
        if min_score is None:
            return np.array([len(row) == 0 for row in self.scores], dtype=bool)
        return np.array([not any(s >= min_score for s in row) for row in self.scores], dtype=bool)

    def top1(self) -> np.ndarray:
        """Return the best score of every non-empty search."""
        return np.array([row[0] for row in self.scores if row], dtype=np.float64)

    def topk_mean(self, k: int) -> np.ndarray:
        """Return the mean of the (up to) ``k`` best scores of every non-empty search: one value per search.

        One value per search, not every score pooled: the scores of one
        search are not independent of each other, which the KS test assumes.
        """
        return np.array([float(np.mean(row[:k])) for row in self.scores if row], dtype=np.float64)

    def lengths(self) -> np.ndarray:
        """Return the length of every query in words (whitespace-separated tokens)."""
        return np.array([len(text.split()) for text in self.texts], dtype=np.float64)


def _scores_of(record: Mapping[str, Any]) -> tuple[float, ...]:
    """Return the scores of one log record, best first (a record without scores returned nothing)."""
    scores = record.get("scores") or []
    return tuple(sorted((float(s) for s in scores), reverse=True))


def window_from_records(records: Iterable[Mapping[str, Any]], embeddings: np.ndarray | None = None) -> QueryWindow:
    """Build a window from query-log records.

    Inputs: dicts with at least ``query`` (the text) and ``scores`` (a list,
    possibly empty); other keys are ignored. ``embeddings``, when given, has one
    row per record in the same order.
    Output: a checked `QueryWindow`. Raises `ValueError` for a record without a
    text query, or misaligned embeddings.
    """
    texts: list[str] = []
    scores: list[tuple[float, ...]] = []
    for number, record in enumerate(records, start=1):
        query = record.get("query")
        if not isinstance(query, str):
            raise ValueError(f"record {number} has no text 'query'")
        texts.append(query)
        scores.append(_scores_of(record))
    return QueryWindow(tuple(texts), tuple(scores), embeddings).checked()


def subsample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``min(n, limit)`` sorted row indices drawn without replacement (all rows when ``n <= limit``)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(rng.choice(n, size=limit, replace=False))
