"""Dev NDCG@10 from embeddings: the dev evaluator's queries and pool, scored without re-encoding per trial.

The prompt and adapter levels try many settings on dev; encoding the pool once
per document prompt (through the embedding cache) and scoring with numpy keeps
that cheap. Scores are the evaluator's: NDCG@10 (ranx, trec_eval conventions)
of each dev query over the evaluator's documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from domainfit.evaluation.metrics import evaluate
from domainfit.retrieval.dense import exact_search


@dataclass
class DevSet:
    """The dev queries, documents and relevance the evaluator holds, as plain lists."""

    query_ids: list[str]
    queries: list[str]
    doc_ids: list[str]
    docs: list[str]
    qrels: dict[str, dict[str, int]]

    @classmethod
    def of(cls, evaluator: Any) -> DevSet:
        """Read a sentence-transformers ``InformationRetrievalEvaluator``'s queries, corpus and relevant documents."""
        return cls(
            query_ids=list(evaluator.queries_ids),
            queries=list(evaluator.queries),
            doc_ids=list(evaluator.corpus_ids),
            docs=list(evaluator.corpus),
            qrels={qid: dict.fromkeys(docs, 1) for qid, docs in evaluator.relevant_docs.items()},
        )

    def ndcg10(self, query_vectors: np.ndarray, doc_vectors: np.ndarray) -> float:
        """Return mean NDCG@10 of the dev queries ranked by inner product over the documents."""
        idx, scores = exact_search(query_vectors, doc_vectors, 10)
        run = {
            qid: {self.doc_ids[int(i)]: float(s) for i, s in zip(idx[row], scores[row], strict=True)}
            for row, qid in enumerate(self.query_ids)
        }
        qrels = {q: self.qrels[q] for q in self.query_ids if q in self.qrels}
        return float(evaluate(qrels, run, ["ndcg@10"])["ndcg@10"])
