"""Dense retrieval over chunks, aggregated back to documents.

Long documents are split by a `domainfit.data.chunking.Chunker`; every chunk is
encoded (through the dense retriever's embedding cache) and searched exactly; the
scores of a document's chunks are aggregated into one document score, so runs and
metrics stay per document:

* ``max``: the score of the document's best chunk;
* ``sum-top-n``: the sum of the scores of its ``top_n`` best chunks (a document
  with several matching passages beats one with a single match).

Chunk search goes deeper than document search (``chunk_depth``, default ten chunks
per requested document). With ``max`` the document scores are exact: a document's
best chunk is among the top chunks whenever any of its chunks is. With
``sum-top-n`` a document is scored from those of its chunks that were retrieved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from domainfit.core.types import Document, Run
from domainfit.data.chunking import Chunk, Chunker, TruncationReport
from domainfit.data.config import Aggregate
from domainfit.retrieval.dense import DenseRetriever, exact_search
from domainfit.retrieval.ranking import rank_documents


def aggregate_chunks(hits: Iterable[tuple[str, float]], method: Aggregate = "max", top_n: int = 3) -> dict[str, float]:
    """Turn one query's chunk hits into document scores.

    Input: ``(doc_id, chunk score)`` pairs (any order, several per document),
    ``max`` or ``sum-top-n`` and ``top_n``. Output: ``{doc_id: score}``.
    """
    if method not in ("max", "sum-top-n"):
        raise ValueError(f"unknown aggregation {method!r}; use 'max' or 'sum-top-n'")
    per_doc: dict[str, list[float]] = {}
    for doc_id, score in hits:
        per_doc.setdefault(doc_id, []).append(float(score))
    if method == "max":
        return {doc_id: max(scores) for doc_id, scores in per_doc.items()}
    return {doc_id: float(sum(sorted(scores, reverse=True)[:top_n])) for doc_id, scores in per_doc.items()}


def top_documents(scores: Mapping[str, float], k: int) -> dict[str, float]:
    """Return the ``k`` best documents of one query (ties as trec_eval breaks them), best first."""
    return dict(rank_documents(scores)[:k])


class ChunkedDenseRetriever:
    """Search chunks with a `DenseRetriever`'s model and cache; rank documents by aggregated chunk scores.

    Inputs: the dense retriever (its model, prompts, batch size and cache are
    reused), a `Chunker`, the aggregation (``max`` or ``sum-top-n``), ``top_n`` and
    ``chunk_depth`` (chunks retrieved per query; None: ten per requested document).
    Example: ``ChunkedDenseRetriever(dense, Chunker.for_model(dense.model, cfg)).index(corpus)``.
    """

    def __init__(
        self,
        dense: DenseRetriever,
        chunker: Chunker,
        *,
        aggregate: Aggregate = "max",
        top_n: int = 3,
        chunk_depth: int | None = None,
    ) -> None:
        if aggregate not in ("max", "sum-top-n"):
            raise ValueError(f"unknown aggregation {aggregate!r}; use 'max' or 'sum-top-n'")
        self.dense, self.chunker = dense, chunker
        self.aggregate: Aggregate = aggregate
        self.top_n, self.chunk_depth = top_n, chunk_depth
        self.chunks: list[Chunk] = []
        self.truncation: TruncationReport | None = None
        self._matrix: np.ndarray | None = None

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob (the dense model's and the chunker's), for reports and manifests."""
        return {
            **self.dense.get_config_dict(),
            "chunking": {
                **self.chunker.get_config_dict(),
                "aggregate": self.aggregate,
                "top_n": self.top_n,
                "chunk_depth": self.chunk_depth,
                "n_chunks": len(self.chunks),
            },
        }

    def index(self, corpus: Mapping[str, Document]) -> None:
        """Chunk every document and encode (or read from cache) every chunk."""
        self.chunks = self.chunker.chunk_corpus(corpus)
        texts = [chunk.encode_text() for chunk in self.chunks]
        self.truncation = self.dense.check_truncation(texts, "chunks")
        self._matrix = self.dense.encode_documents(texts, what="chunks")

    def search_chunks(self, queries: Mapping[str, str], k: int) -> dict[str, list[tuple[Chunk, float]]]:
        """Return each query's ``k`` best chunks with their cosine scores, best first."""
        if self._matrix is None:
            raise RuntimeError("ChunkedDenseRetriever.search called before index")
        qids = list(queries)
        self.dense.check_truncation([queries[qid] for qid in qids], "queries", query=True)
        vectors = self.dense.encode_queries([queries[qid] for qid in qids])
        idx, scores = exact_search(vectors, self._matrix, k, self.dense.backend)
        return {
            qid: [(self.chunks[int(i)], float(s)) for i, s in zip(idx[row], scores[row], strict=True)]
            for row, qid in enumerate(qids)
        }

    def search(self, queries: Mapping[str, str], k: int = 100) -> Run:
        """Search chunks, aggregate to documents; returns ``{qid: {doc_id: score}}`` with the ``k`` best documents."""
        depth = self.chunk_depth or 10 * k
        hits = self.search_chunks(queries, depth)
        return {
            qid: top_documents(aggregate_chunks(((c.doc_id, s) for c, s in found), self.aggregate, self.top_n), k)
            for qid, found in hits.items()
        }
