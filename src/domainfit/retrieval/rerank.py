"""Rerank the top of a run with a sentence-transformers `CrossEncoder`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from domainfit.core.progress import progress_bar
from domainfit.core.types import Document, Run
from domainfit.retrieval.ranking import ranked_ids
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


def rerank(
    run: Run,
    queries: Mapping[str, str],
    corpus: Mapping[str, Document],
    model: CrossEncoder,
    *,
    depth: int = 100,
    batch_size: int = 32,
    text: TextConfig = DEFAULT_TEXT,
) -> Run:
    """Rescore the top ``depth`` documents of every query with a cross-encoder.

    Inputs: a first-stage run, query texts, the corpus and a loaded CrossEncoder.
    Output: a run holding only the reranked top ``depth`` per query, scored by the cross-encoder.
    Query and document texts are prepared under ``text`` as at indexing time.
    """
    candidates = {qid: ranked_ids(scores)[:depth] for qid, scores in run.items() if qid in queries}
    total = sum(len(docs) for docs in candidates.values())
    out: Run = {}
    with progress_bar("reranking", total) as advance:
        for qid, docs in candidates.items():
            if not docs:
                out[qid] = {}
                continue
            query = text.prepare(queries[qid])
            pairs = [(query, text.prepare(corpus[doc].full_text())) for doc in docs]
            scores = model.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
            out[qid] = {doc: float(s) for doc, s in zip(docs, scores, strict=True)}
            advance(len(docs))
    return out
