"""Fuse a dense and a BM25 hit list into one hybrid list, with bench's own fusion functions.

The fusion is `domainfit.retrieval.hybrid.rrf` (k = `RRF_K`) or
`domainfit.retrieval.hybrid.convex` (``alpha`` the dense weight on min-max
normalised scores): the same code bench and eval score hybrids with, so an
index serves the hybrid that was measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domainfit.core.types import Run
from domainfit.index.types import RRF_K, Fusion, Hit
from domainfit.retrieval.hybrid import convex, rrf


def overfetch(k: int) -> int:
    """Return how many hits to ask a store for so that `top` can break ties at the k-th place by id."""
    return 2 * k + 10


def top(hits: Sequence[Hit], k: int) -> list[Hit]:
    """Return the best ``k`` hits, ties by id: the same list whatever order the store kept equal scores in."""
    return sorted(hits, key=lambda h: (-h.score, h.id))[:k]


def _run(hits: Sequence[Hit]) -> Run:
    """Return one query's hits as a run."""
    return {"q": {hit.id: hit.score for hit in hits}}


def fuse(
    dense: Sequence[Hit], lexical: Sequence[Hit], k: int, *, fusion: Fusion = "rrf", alpha: float | None = None
) -> list[Hit]:
    """Return the top ``k`` of the fused lists, best first (ties by id), with the fields either list carried.

    Inputs: the dense and the BM25 hits of one query (each best first), ``k``,
    the fusion (``rrf`` with k = `RRF_K`, equal weights; ``convex`` with
    ``alpha`` the dense weight).
    """
    if fusion == "convex":
        scores = convex(_run(lexical), _run(dense), float(alpha if alpha is not None else 0.5)).get("q", {})
    else:
        scores = rrf([_run(dense), _run(lexical)], k=RRF_K).get("q", {})
    fields: dict[str, Mapping[str, Any]] = {}
    for hit in (*lexical, *dense):
        fields[hit.id] = hit.fields
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
    return [Hit(doc, float(score), fields.get(doc, {})) for doc, score in ranked]
