"""BM25 retrieval through bm25s.

Example: ``bm25 = BM25Retriever(); bm25.index(corpus); run = bm25.search(queries, k=100)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from domainfit.core.types import Document, Run
from domainfit.text.config import DEFAULT_TEXT, TextConfig


class BM25Retriever:
    """Okapi BM25 over a corpus, backed by bm25s sparse matrices.

    Inputs: BM25 parameters (``k1``, ``b``, ``method`` as bm25s names them),
    an English stemmer and stop-word list by default (``stemmer=None`` for
    none). Requirements: ``bm25s`` (and ``PyStemmer`` for stemming).
    Documents and queries are prepared the same way before tokenising, under the
    ``[text]`` settings ``text``.
    """

    def __init__(
        self,
        k1: float = 1.2,
        b: float = 0.75,
        method: str = "lucene",
        stemmer: str | None = "english",
        stopwords: str | list[str] | None = "en",
        show_progress: bool = False,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        self.k1, self.b, self.method = k1, b, method
        self.text = text
        self.stemmer_name, self.stopwords = stemmer, stopwords
        self.show_progress = show_progress
        self._doc_ids: list[str] = []
        self._retriever: Any = None
        self._tokenizer: Any = None

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob, for reports and manifests."""
        return {
            "k1": self.k1,
            "b": self.b,
            "method": self.method,
            "stemmer": self.stemmer_name,
            "stopwords": self.stopwords,
        }

    def _make_tokenizer(self) -> Any:
        """Build the bm25s tokenizer (lowercase, word regex, stop words, stemmer)."""
        import bm25s.tokenization

        stemmer = None
        if self.stemmer_name:
            try:
                import Stemmer
            except ImportError as exc:  # pragma: no cover - PyStemmer is a core dependency
                raise ImportError("BM25 stemming needs PyStemmer: pip install PyStemmer (or stemmer=None)") from exc
            stemmer = Stemmer.Stemmer(self.stemmer_name)
        return bm25s.tokenization.Tokenizer(stopwords=self.stopwords or [], stemmer=stemmer)

    def index_texts(self, doc_ids: list[str], texts: list[str]) -> None:
        """Index raw texts under the given document ids."""
        import bm25s

        self._tokenizer = self._make_tokenizer()
        tokens = self._tokenizer.tokenize(
            self.text.prepare_all(texts), return_as="tuple", show_progress=self.show_progress
        )
        self._retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        self._retriever.index(tokens, show_progress=self.show_progress)
        self._doc_ids = list(doc_ids)

    def index(self, corpus: Mapping[str, Document]) -> None:
        """Index a corpus (title and text of every document)."""
        self.index_texts(list(corpus), [doc.full_text() for doc in corpus.values()])

    def search_texts(self, texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (document indices, scores), each shaped (len(texts), min(k, corpus size))."""
        if self._retriever is None:
            raise RuntimeError("BM25Retriever.search called before index")
        k = min(k, len(self._doc_ids))
        tokens = self._tokenizer.tokenize(
            self.text.prepare_all(texts), update_vocab=False, return_as="ids", show_progress=False
        )
        # bm25s maps tokens by its own vocabulary; pass token strings so unknown words are dropped
        strings = self._tokenizer.decode(tokens)
        docs, scores = self._retriever.retrieve(strings, k=k, show_progress=self.show_progress, n_threads=0)
        return np.asarray(docs), np.asarray(scores, dtype=np.float32)

    def search(self, queries: Mapping[str, str], k: int = 100) -> Run:
        """Search every query; returns a run ``{qid: {doc_id: score}}`` (zero-score hits dropped)."""
        qids = list(queries)
        idx, scores = self.search_texts([queries[q] for q in qids], k)
        run: Run = {}
        for row, qid in enumerate(qids):
            run[qid] = {self._doc_ids[int(i)]: float(s) for i, s in zip(idx[row], scores[row], strict=True) if s > 0}
        return run

    def score_all(self, text: str) -> np.ndarray:
        """BM25 score of every indexed document for one query (float32, in index order)."""
        if self._retriever is None:
            raise RuntimeError("BM25Retriever.score_all called before index")
        tokens = self._tokenizer.decode(
            self._tokenizer.tokenize(
                [self.text.prepare(text)], update_vocab=False, return_as="ids", show_progress=False
            )
        )[0]
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float32)
