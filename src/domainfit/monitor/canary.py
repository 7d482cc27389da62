"""Canary queries: recall@k and MRR@k of known queries against the baseline recorded at promotion.

A canary set is ordinary qrels (``{query_id: {doc_id: grade}}``: the queries
and the documents they must find), from the benchmark or the user's own list.
At promotion `canary_baseline` records the metrics of the serving version's
run; later `canary_check` scores a fresh run and alerts when a metric drops
below its floor: ``baseline - canary_max_drop``, or ``canary_floor`` when that
is set and higher.
"""

from __future__ import annotations

from collections.abc import Mapping

from domainfit.core.types import Qrels, Run
from domainfit.evaluation.metrics import evaluated_query_ids, per_query
from domainfit.monitor.config import MonitorSettings
from domainfit.monitor.results import CanaryMetric, CanaryResult


def canary_metrics(settings: MonitorSettings) -> list[str]:
    """Return the metric names a canary check scores: ``recall@k`` and ``mrr@k``."""
    return [f"recall@{settings.canary_k}", f"mrr@{settings.canary_k}"]


def canary_baseline(qrels: Qrels, run: Run, settings: MonitorSettings | None = None) -> dict[str, float]:
    """Score the canary queries once, to record as the baseline (``{metric: mean}``).

    Raises `ValueError` when no canary query has a relevant document.
    """
    settings = settings or MonitorSettings()
    if not evaluated_query_ids(qrels):
        raise ValueError("the canary qrels have no query with a relevant document (grade > 0)")
    scores = per_query(qrels, run, canary_metrics(settings))
    return {metric: sum(by_query.values()) / len(by_query) for metric, by_query in scores.items()}


def canary_check(
    qrels: Qrels, run: Run, baseline: Mapping[str, float], settings: MonitorSettings | None = None
) -> CanaryResult:
    """Score the canary queries and compare each metric with its floor.

    Inputs: the canary qrels, the current run over them (``{query_id: {doc_id:
    score}}``; a missing query scores 0), the recorded baseline (as
    `canary_baseline` returns) and the settings.
    Output: a `CanaryResult`; ``failed_queries`` are the canary queries with
    none of their relevant documents in the top k.
    Raises `ValueError` when the baseline lacks a metric or no canary query has a relevant document.
    """
    settings = settings or MonitorSettings()
    names = canary_metrics(settings)
    missing = [m for m in names if m not in baseline]
    if missing:
        raise ValueError(f"the canary baseline has no {', '.join(missing)} (recorded with another k?)")
    if not evaluated_query_ids(qrels):
        raise ValueError("the canary qrels have no query with a relevant document (grade > 0)")
    scores = per_query(qrels, run, names)
    metrics = []
    for metric in names:
        by_query = scores[metric]
        floor = float(baseline[metric]) - settings.canary_max_drop
        if settings.canary_floor is not None:
            floor = max(floor, settings.canary_floor)
        metrics.append(
            CanaryMetric(
                metric=metric,
                value=sum(by_query.values()) / len(by_query),
                baseline=float(baseline[metric]),
                floor=floor,
                n_queries=len(by_query),
            )
        )
    failed = tuple(qid for qid, value in scores[names[0]].items() if value == 0.0)
    return CanaryResult(metrics=tuple(metrics), failed_queries=failed)
