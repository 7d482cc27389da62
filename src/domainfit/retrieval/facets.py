"""Facet retrieval: embed several document fields separately, search each, fuse with weights.

A *facet* is one field of a document: ``title``, ``text`` or a metadata key such
as ``attributes``. Each facet gets its own embedding matrix (same bi-encoder,
same cache); a query is searched against every facet, each facet's scores are
min-max normalised per query, and the fused score is ``sum_f w_f * score_f``
(a document missing from a facet's top ``k``, or without that field, scores 0
there). The weights are given, or picked on a dev split by `sweep_facet_weights`.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from domainfit.core.types import Document, Qrels, Run
from domainfit.retrieval.config import FACET_GRID
from domainfit.retrieval.dense import DenseRetriever, exact_search
from domainfit.retrieval.hybrid import minmax
from domainfit.retrieval.ranking import ranked_ids

#: Field names that read the document itself rather than its metadata.
DOCUMENT_FIELDS = ("title", "text")


def field_text(doc: Document, name: str) -> str:
    """Return the text of one field of a document ("" when it has none).

    Inputs: the document and a field name (``title``, ``text`` or a metadata key).
    Output: the field as text: strings as they are, numbers via ``str``, lists
    joined by ``", "``, dicts rendered ``key: value; key: value`` (nested values as JSON).
    """
    if name == "title":
        return doc.title
    if name == "text":
        return doc.text
    return _render(doc.metadata.get(name))


def _render(value: Any) -> str:
    """Render a metadata value as text for an encoder."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, list):
        return ", ".join(_render(v) for v in value if _render(v))
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
            parts.append(f"{key}: {text}")
        return "; ".join(parts)
    return json.dumps(value, ensure_ascii=False)


def field_coverage(corpus: Mapping[str, Document], fields: Sequence[str]) -> dict[str, int]:
    """Count, per field, the documents with a non-empty value for it.

    Inputs: the corpus and field names. Output: ``{field: number of documents}``.
    """
    return {name: sum(1 for doc in corpus.values() if field_text(doc, name).strip()) for name in fields}


class FacetRetriever:
    """Per-field dense search with one bi-encoder.

    Inputs: a `DenseRetriever` (its model, prompts, batch size and embedding cache
    are reused) and the field names. Call `index` with the corpus, then `search`.
    Example: ``FacetRetriever(DenseRetriever(), ["title", "text", "attributes"])``.
    """

    def __init__(self, dense: DenseRetriever, fields: Sequence[str]) -> None:
        if not fields:
            raise ValueError("FacetRetriever needs at least one field")
        self.dense = dense
        self.fields = list(fields)
        self._ids: dict[str, list[str]] = {}
        self._matrices: dict[str, np.ndarray] = {}

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob, for reports and manifests."""
        return {**self.dense.get_config_dict(), "fields": self.fields}

    def index(self, corpus: Mapping[str, Document]) -> dict[str, int]:
        """Encode every non-empty field of every document; returns the documents indexed per field."""
        counts: dict[str, int] = {}
        for name in self.fields:
            pairs = [(did, field_text(doc, name)) for did, doc in corpus.items()]
            pairs = [(did, text) for did, text in pairs if text.strip()]
            self._ids[name] = [did for did, _ in pairs]
            self._matrices[name] = (
                self.dense.encode_documents([text for _, text in pairs])
                if pairs
                else np.zeros((0, 1), dtype=np.float32)
            )
            counts[name] = len(pairs)
        return counts

    def search(self, queries: Mapping[str, str], k: int = 100) -> dict[str, Run]:
        """Search every facet; returns ``{field: {qid: {doc_id: cosine}}}`` (top ``k`` per facet)."""
        if not self._matrices:
            raise RuntimeError("FacetRetriever.search called before index")
        qids = list(queries)
        vectors = self.dense.encode_queries([queries[qid] for qid in qids])
        runs: dict[str, Run] = {}
        for name in self.fields:
            ids, matrix = self._ids[name], self._matrices[name]
            if not ids:
                runs[name] = {qid: {} for qid in qids}
                continue
            idx, scores = exact_search(vectors, matrix, k, self.dense.backend)
            runs[name] = {
                qid: {ids[int(i)]: float(s) for i, s in zip(idx[row], scores[row], strict=True)}
                for row, qid in enumerate(qids)
            }
        return runs


def fuse_facets(runs: Mapping[str, Run], weights: Mapping[str, float], depth: int | None = None) -> Run:
    """Weighted fusion of per-facet runs on per-query min-max normalised scores.

    Inputs: ``{field: run}``, ``{field: weight}`` (fields without a weight count 0;
    weights need not sum to 1) and an optional cut-off. Output: the fused run,
    ``score(d) = sum_f w_f * minmax_f(d)`` with a missing document scoring 0 in that facet.
    """
    normalised = {name: minmax(run) for name, run in runs.items() if weights.get(name, 0.0) != 0.0}
    qids = sorted({qid for run in runs.values() for qid in run})
    fused: Run = {}
    for qid in qids:
        scores: dict[str, float] = {}
        for name, run in normalised.items():
            weight = weights[name]
            for doc, value in run.get(qid, {}).items():
                scores[doc] = scores.get(doc, 0.0) + weight * value
        if depth is not None:
            scores = {doc: scores[doc] for doc in ranked_ids(scores)[:depth]}
        fused[qid] = scores
    return fused


def weight_grid(fields: Sequence[str], grid: Sequence[float] = FACET_GRID) -> list[dict[str, float]]:
    """Every combination of grid weights over the fields, normalised to sum 1, without repeats.

    Inputs: field names and the per-field grid. Output: weight dicts in grid
    order; the all-zero combination is skipped, and combinations that normalise
    to the same weights appear once.
    """
    seen: set[tuple[float, ...]] = set()
    out: list[dict[str, float]] = []
    for combo in itertools.product(grid, repeat=len(fields)):
        total = math.fsum(combo)
        if total <= 0:
            continue
        key = tuple(round(w / total, 6) for w in combo)
        if key in seen:
            continue
        seen.add(key)
        out.append(dict(zip(fields, key, strict=True)))
    return out


@dataclass
class FacetSweep:
    """Result of a facet-weight sweep: the chosen weights, the metric and every combination's dev score."""

    weights: dict[str, float]
    metric: str
    scores: list[dict[str, Any]]


def sweep_facet_weights(
    runs: Mapping[str, Run],
    qrels: Qrels,
    evaluate: Callable[[Qrels, Run], float],
    metric: str = "ndcg@10",
    grid: Sequence[float] = FACET_GRID,
) -> FacetSweep:
    """Pick the facet weights that maximise ``evaluate(qrels, fused run)`` on the given (dev) qrels.

    Inputs: per-facet runs of the dev queries, the dev qrels, a scoring function,
    the metric name (for the record) and the per-field grid (see `weight_grid`).
    Output: a `FacetSweep`. Ties prefer the most even weights, then grid order.
    """
    fields = list(runs)
    tried: list[dict[str, Any]] = []
    best: tuple[float, float, int] | None = None
    chosen: dict[str, float] = {}
    for order, weights in enumerate(weight_grid(fields, grid)):
        score = evaluate(qrels, fuse_facets(runs, weights))
        tried.append({"weights": weights, "score": score})
        evenness = -math.fsum((w - 1 / len(fields)) ** 2 for w in weights.values())
        key = (round(score, 10), evenness, -order)
        if best is None or key > best:
            best, chosen = key, weights
    return FacetSweep(weights=chosen, metric=metric, scores=tried)
