"""The one tie rule every ranking in domainfit follows (trec_eval's)."""

from __future__ import annotations

import math
from collections.abc import Mapping


def rank_documents(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """Rank one query's documents the way trec_eval does.

    Input: ``{doc_id: score}`` for one query.
    Output: ``(doc_id, score)`` pairs sorted by score descending, equal scores by
    document id in descending string (code point) order.
    Raises `ValueError` when a score is NaN (it has no place in a ranking).
    """
    items = [(doc_id, float(score)) for doc_id, score in scores.items()]
    for doc_id, score in items:
        if math.isnan(score):
            raise ValueError(f"document {doc_id!r} has a NaN score")
    # Two stable passes: the secondary key first, then the primary key.
    items.sort(key=lambda item: item[0], reverse=True)
    items.sort(key=lambda item: item[1], reverse=True)
    return items


def ranked_ids(scores: Mapping[str, float]) -> list[str]:
    """Return one query's document ids best first (ties as in `rank_documents`)."""
    return [doc_id for doc_id, _ in rank_documents(scores)]
