"""Embeddings of a BEIR split for the compress and calibrate stages, through an embedding cache.

Documents and queries are encoded by `domainfit.retrieval.dense.DenseRetriever`
with the cache at ``<workspace>/cache/embeddings``, so a corpus that ``bench``
already encoded (same model, same maximum sequence length) is read, not re-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from domainfit.core.types import Qrels
from domainfit.data.beir import BeirDataset
from domainfit.data.judged import check_evaluated_split
from domainfit.retrieval.config import EncodeConfig
from domainfit.retrieval.dense import DenseRetriever
from domainfit.text.config import DEFAULT_TEXT, TextConfig


@dataclass
class EncodedCorpus:
    """Document ids and their unit-length float32 embeddings (n, D), in corpus order."""

    doc_ids: list[str]
    vectors: np.ndarray


@dataclass
class EncodedQueries:
    """The judged queries of one split: ids, embeddings (nq, D) and the split's qrels."""

    split: str
    query_ids: list[str]
    vectors: np.ndarray
    qrels: Qrels


def open_retriever(
    model: str,
    cache_dir: Path,
    *,
    batch_size: int = 32,
    max_seq_length: int | None = 256,
    text: TextConfig = DEFAULT_TEXT,
    encode: EncodeConfig | None = None,
) -> DenseRetriever:
    """Load a bi-encoder with an embedding cache (the workspace's is ``<workspace>/cache/embeddings``).

    ``encode`` picks the CPU backend (`domainfit.retrieval.backends`; None: torch).
    """
    return DenseRetriever(
        model,
        text=text,
        cache_dir=cache_dir,
        batch_size=batch_size,
        max_seq_length=max_seq_length,
        encode=encode,
    )


def split_qrels(dataset: BeirDataset, split: str) -> Qrels:
    """Return the qrels of ``split``; raise `InputError` when it is absent or judges no query."""
    return check_evaluated_split(dataset, split)


def encode_corpus(dataset: BeirDataset, retriever: DenseRetriever) -> EncodedCorpus:
    """Embed every document (title and text), reading cached vectors first."""
    doc_ids = list(dataset.corpus)
    vectors = retriever.encode_documents([dataset.corpus[d].full_text() for d in doc_ids])
    return EncodedCorpus(doc_ids, np.ascontiguousarray(vectors, dtype=np.float32))


def encode_split_queries(dataset: BeirDataset, split: str, retriever: DenseRetriever) -> EncodedQueries:
    """Embed the queries judged in ``split`` (in qrels order), reading cached vectors first."""
    qrels = split_qrels(dataset, split)
    query_ids = [qid for qid in qrels if qid in dataset.queries]
    vectors = retriever.encode_queries([dataset.queries[q].text for q in query_ids])
    return EncodedQueries(split, query_ids, np.ascontiguousarray(vectors, dtype=np.float32), qrels)
