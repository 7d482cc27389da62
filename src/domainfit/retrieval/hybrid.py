"""Hybrid retrieval: fuse a lexical and a dense run.

Two fusions: reciprocal-rank fusion (RRF, rank-based, needs no tuning) and a
convex combination of per-query min-max normalised scores, whose weight is
tuned on the dev split. A document missing from one run scores 0 there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domainfit.core.types import Qrels, Run
from domainfit.retrieval.ranking import ranked_ids

#: Convex weights tried when tuning: 0.0, 0.1, ..., 1.0.
ALPHA_GRID: tuple[float, ...] = tuple(step / 10 for step in range(11))


def rrf(runs: Sequence[Run], k: int = 60, depth: int = 1000, weights: Sequence[float] | None = None) -> Run:
    """Reciprocal-rank fusion: ``score(d) = sum_i w_i / (k + rank_i(d))`` over the top ``depth`` of each run."""
    weights = list(weights) if weights is not None else [1.0] * len(runs)
    fused: Run = {}
    for run, weight in zip(runs, weights, strict=True):
        for qid, scores in run.items():
            target = fused.setdefault(qid, {})
            for rank, doc in enumerate(ranked_ids(scores)[:depth], start=1):
                target[doc] = target.get(doc, 0.0) + weight / (k + rank)
    return fused


def minmax(run: Run) -> Run:
    """Scale each query's scores to [0, 1] (all-equal scores become 1)."""
    out: Run = {}
    for qid, scores in run.items():
        if not scores:
            out[qid] = {}
            continue
        low, high = min(scores.values()), max(scores.values())
        span = high - low
        out[qid] = {doc: (s - low) / span if span > 0 else 1.0 for doc, s in scores.items()}
    return out


def convex(lexical: Run, dense: Run, alpha: float, depth: int | None = None) -> Run:
    """Convex fusion: ``alpha * dense + (1 - alpha) * lexical`` on min-max normalised scores."""
    lex, den = minmax(lexical), minmax(dense)
    fused: Run = {}
    for qid in set(lex) | set(den):
        a, b = lex.get(qid, {}), den.get(qid, {})
        scores = {doc: alpha * b.get(doc, 0.0) + (1 - alpha) * a.get(doc, 0.0) for doc in set(a) | set(b)}
        if depth is not None:
            scores = {doc: scores[doc] for doc in ranked_ids(scores)[:depth]}
        fused[qid] = scores
    return fused


@dataclass
class ConvexTuning:
    """Result of tuning the convex weight: the chosen alpha and the dev score of every alpha tried."""

    alpha: float
    metric: str
    scores: dict[float, float]


def tune_convex(
    lexical: Run,
    dense: Run,
    qrels: Qrels,
    evaluate: Callable[[Qrels, Run], float],
    metric: str = "ndcg@10",
    grid: Sequence[float] = ALPHA_GRID,
) -> ConvexTuning:
    """Pick the convex weight that maximises ``evaluate(qrels, run)`` on the given (dev) qrels.

    Ties prefer the weight closest to 0.5 (an even mix), then the smaller one.
    """
    scores = {round(alpha, 4): evaluate(qrels, convex(lexical, dense, alpha)) for alpha in grid}
    best = max(scores.items(), key=lambda kv: (round(kv[1], 10), -abs(kv[0] - 0.5), -kv[0]))
    return ConvexTuning(alpha=best[0], metric=metric, scores=scores)
