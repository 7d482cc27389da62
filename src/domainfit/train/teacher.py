"""Teachers for margin distillation: a cross-encoder, or the hybrid BM25 + dense scorer.

A teacher maps (query, document) text pairs to relevance scores. With no
cross-encoder (none ships offline), the hybrid scorer stands in: ``alpha *
cosine(base model) + (1 - alpha) * BM25 / max BM25 for that query`` over the
corpus — the GPL recipe with no network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from domainfit.retrieval.dense import encode_texts
from domainfit.retrieval.lexical import BM25Retriever
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder, SentenceTransformer


class CrossEncoderTeacher:
    """Scores pairs with a sentence-transformers CrossEncoder."""

    def __init__(self, model: CrossEncoder, batch_size: int = 32) -> None:
        self.model, self.batch_size = model, batch_size

    def __call__(self, queries: Sequence[str], docs: Sequence[str]) -> list[float]:
        """Return one cross-encoder score per (query, document) pair."""
        pairs = list(zip(queries, docs, strict=True))
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return [float(s) for s in scores]


class HybridTeacher:
    """Scores pairs with the convex mix of base-model cosine and per-query normalised BM25.

    Inputs: the base bi-encoder, the corpus texts (BM25 statistics come from the
    whole corpus), the dense weight ``alpha`` (use the value ``bench`` tuned) and
    the ``[text]`` settings texts are prepared under.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        corpus_texts: Sequence[str],
        alpha: float = 0.5,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        self.model, self.alpha, self.text = model, alpha, text
        self.bm25 = BM25Retriever(text=text)
        self.bm25.index_texts([str(i) for i in range(len(corpus_texts))], list(corpus_texts))
        self.position = {text: i for i, text in enumerate(corpus_texts)}

    def __call__(self, queries: Sequence[str], docs: Sequence[str]) -> list[float]:
        """Return one hybrid score per (query, document) pair (a text not in the corpus gets BM25 0)."""
        q = encode_texts(self.model, list(queries), description="teacher: queries", text=self.text)
        d = encode_texts(self.model, list(docs), description="teacher: documents", text=self.text)
        cosine = np.sum(q * d, axis=1)
        lexical = np.zeros(len(queries), dtype=np.float32)
        cache: dict[str, np.ndarray] = {}
        for i, (query, doc) in enumerate(zip(queries, docs, strict=True)):
            if query not in cache:
                scores = self.bm25.score_all(query)
                top = float(scores.max()) if scores.size else 0.0
                cache[query] = scores / top if top > 0 else scores
            pos = self.position.get(doc)
            lexical[i] = cache[query][pos] if pos is not None else 0.0
        return [float(x) for x in self.alpha * cosine + (1 - self.alpha) * lexical]
