"""Retrieval metrics computed through ranx, matching trec_eval to 1e-6.

The metric math is ranx's; this module only prepares its inputs so that the
numbers equal what trec_eval (``pytrec_eval``) reports for the same qrels and run:

* **Evaluated queries** are the queries of the qrels with at least one document of
  relevance > 0. Each of them gets a score for every metric, even when the run has
  no entry for it or an empty entry (the score is then 0). Run queries absent from
  the qrels are ignored, and so are qrels queries without a relevant document.
* **Ties** are broken the trec_eval way: documents are ranked by score, descending,
  and documents with equal scores by document id in *descending* string order
  (``"c"`` before ``"b"`` before ``"a"``; ``"9"`` before ``"10"``). ranx keeps an
  unspecified order among equal scores, so each query's documents are re-ranked
  here and their scores replaced by strictly decreasing rank-based values before
  ranx sees them.
* **Grades**: only relevance > 0 counts as relevant, and NDCG uses the grade itself
  as the gain (linear gain, trec_eval's ``ndcg_cut``). Zero and negative grades are
  non-relevant and add no gain, as in trec_eval; they are dropped from the qrels
  handed to ranx, which ignores them anyway.

Supported measure names (``k`` is a positive integer):

========================  ===============================================
name                      trec_eval equivalent
========================  ===============================================
``ndcg@k``                ``ndcg_cut_k``
``ndcg``                  ``ndcg``
``recall@k``              ``recall_k``
``precision@k``           ``P_k``
``mrr@k``                 ``recip_rank`` on the run cut to its top k
``mrr``                   ``recip_rank``
``map@k``                 ``map_cut_k``
``map``                   ``map``
========================  ===============================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from domainfit.core.errors import UsageError
from domainfit.core.types import Qrels, Run
from domainfit.retrieval.ranking import rank_documents

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "recall@100", "mrr@10", "map@100")
"""The metrics reported when the caller does not choose."""

_METRIC_RE = re.compile(r"^(?:(?:ndcg|mrr|map)(?:@[1-9][0-9]*)?|(?:recall|precision)@[1-9][0-9]*)$")

_CODE_WIDTH = 16
"""Width of the hex codes that stand for document ids inside ranx."""


def check_metrics(metrics: Iterable[str]) -> list[str]:
    """Validate measure names and drop duplicates.

    Input: measure names such as ``"ndcg@10"`` or ``"map"``.
    Output: the names in their first-seen order, without duplicates.
    Raises `UsageError` for an unknown name or a zero cutoff.
    """
    if isinstance(metrics, str):
        metrics = [metrics]
    out: list[str] = []
    for name in metrics:
        if not isinstance(name, str) or not _METRIC_RE.match(name):
            raise UsageError(
                f"unknown metric {name!r}: use ndcg@k, recall@k, precision@k, mrr@k, map@k, "
                "ndcg, mrr or map (k a positive integer)"
            )
        if name not in out:
            out.append(name)
    if not out:
        raise UsageError("no metric requested")
    return out


def rank_scores(scores: Mapping[str, float]) -> dict[str, float]:
    """Replace one query's scores by strictly decreasing rank-based values.

    Input: ``{doc_id: score}`` for one query.
    Output: ``{doc_id: value}`` in trec_eval rank order (see `rank_documents`), the
    first document valued ``n``, the next ``n - 1`` ... the last ``1.0``; any
    ranker, whatever its tie rule, then reproduces trec_eval's order.
    """
    ranked = rank_documents(scores)
    n = len(ranked)
    return {doc_id: float(n - position) for position, (doc_id, _) in enumerate(ranked)}


def evaluated_query_ids(qrels: Qrels) -> list[str]:
    """Return the ids of the queries that get scored.

    Input: qrels ``{query_id: {doc_id: grade}}``.
    Output: the query ids with at least one document of grade > 0, sorted.
    """
    return sorted(qid for qid, docs in qrels.items() if any(g > 0 for g in docs.values()))


def _code(index: int) -> str:
    """Return the fixed-width document code ranx sees for a per-query document index."""
    return f"{index:0{_CODE_WIDTH}x}"


class RanxInputs:
    """The qrels in the form ranx gets them, and a factory for matching runs.

    Input: qrels ``{query_id: {doc_id: grade}}``.
    Attributes: ``query_ids`` (the evaluated queries, sorted) and ``qrels`` (a
    `ranx.Qrels` over them holding only the documents of grade > 0; ranx and
    trec_eval both ignore the others). Use `run` to convert each run.

    Document ids are replaced, per query, by fixed-width codes before ranx sees
    them: ranx compiles its numba code for the width of the longest document id,
    so raw ids would trigger a fresh (slow) compilation for every new width.
    """

    def __init__(self, qrels: Qrels) -> None:
        from ranx import Qrels as RanxQrels

        self.query_ids = evaluated_query_ids(qrels)
        self._codes: dict[str, dict[str, str]] = {}
        coded: dict[str, dict[str, int]] = {}
        for qid in self.query_ids:
            relevant = sorted(doc_id for doc_id, g in qrels[qid].items() if g > 0)
            self._codes[qid] = {doc_id: _code(i) for i, doc_id in enumerate(relevant)}
            coded[qid] = {self._codes[qid][doc_id]: int(qrels[qid][doc_id]) for doc_id in relevant}
        self.qrels = RanxQrels(coded) if coded else None

    def run(self, run: Run, name: str | None = None) -> Any:
        """Convert a run into a `ranx.Run` over exactly the evaluated queries.

        Inputs: the run ``{query_id: {doc_id: score}}`` and an optional name.
        Output: a `ranx.Run` with one entry per evaluated query: the run's
        documents (coded) with rank-based scores (see `rank_scores`), so ranx
        ranks them in trec_eval order. A query the run lacks, or whose entry is
        empty, gets one non-relevant document, so every metric scores it 0
        (ranx cannot take empty entries). Run queries not evaluated are dropped.
        """
        from ranx import Run as RanxRun

        entries: dict[str, dict[str, float]] = {}
        for qid in self.query_ids:
            codes = self._codes[qid]
            extra = len(codes)
            coded: dict[str, float] = {}
            for doc_id, value in rank_scores(run.get(qid) or {}).items():
                code = codes.get(doc_id)
                if code is None:
                    code = _code(extra)
                    extra += 1
                coded[code] = value
            entries[qid] = coded or {_code(extra): 1.0}
        return RanxRun(entries, name=name)


def per_query(qrels: Qrels, run: Run, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """Score every evaluated query with ranx.

    Inputs: qrels ``{query_id: {doc_id: grade}}``, a run ``{query_id: {doc_id:
    score}}`` and measure names (see the module docstring).
    Output: ``{metric: {query_id: score}}`` with one score per evaluated query
    (query with a document of grade > 0); queries the run misses score 0.
    An empty dict per metric when no query is evaluated.
    """
    from ranx import evaluate as ranx_evaluate

    names = check_metrics(metrics)
    inputs = RanxInputs(qrels)
    if inputs.qrels is None:
        return {m: {} for m in names}
    ranx_run = inputs.run(run)
    ranx_evaluate(inputs.qrels, ranx_run, names, save_results_in_run=True)
    return {m: {qid: float(ranx_run.scores[m][qid]) for qid in inputs.query_ids} for m in names}


def evaluate(qrels: Qrels, run: Run, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Compute the mean of each metric over the evaluated queries.

    Inputs: qrels, run and measure names, as for `per_query`.
    Output: ``{metric: mean score}``, the mean taken over every query of the qrels
    with a document of grade > 0 (queries the run misses count as 0).
    Raises `ValueError` when no query of the qrels has a relevant document.
    """
    if not evaluated_query_ids(qrels):
        raise ValueError("the qrels have no query with a relevant document (grade > 0)")
    scores = per_query(qrels, run, metrics)
    return {m: math.fsum(by_query.values()) / len(by_query) for m, by_query in scores.items()}
