"""The dev pool: the documents model selection is scored on, as hard as the full corpus.

A dev corpus of relevant documents plus random others is too easy (the base
model already ranks the relevant ones on top), so it cannot tell recipes apart.
The pool here is every judged dev document plus the top ``depth`` documents of
each candidate run (BM25 and the base dense model) for each dev query: every
document those systems would rank highly is in it, so the base model's top 10
over the pool are its top 10 over the full corpus, and its NDCG@10 is kept.

Example::

    runs = candidate_runs(dataset.corpus, dev_queries, base_model, depth=100)
    pool = dev_pool(dataset.corpus, dev_qrels, runs, depth=100)
    evaluator = pool_evaluator(dataset.corpus, dev_queries, dev_qrels, pool)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.core.types import Document, Qrels, Run
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: Evaluator name; metric keys read ``eval_<name>_cosine_ndcg@10`` in the trainer's logs.
EVALUATOR_NAME = "dev"


def top_documents(scores: Mapping[str, float], depth: int) -> set[str]:
    """Return the ``depth`` best-scored documents of one query, and every document tied with the last of them."""
    if depth <= 0 or not scores:
        return set()
    ordered = sorted(scores.values(), reverse=True)
    floor = ordered[min(depth, len(ordered)) - 1]
    return {doc for doc, score in scores.items() if score >= floor}


def dev_pool(corpus_ids: Iterable[str], dev_qrels: Qrels, candidate_runs: Sequence[Run], depth: int) -> set[str]:
    """Return the dev pool: judged dev documents and each run's top ``depth`` for each dev query.

    Inputs: the corpus' document ids, the dev qrels ``{qid: {doc: grade}}``
    (judged documents of any grade are kept), the candidate runs
    (``{qid: {doc: score}}``, e.g. BM25 and the base dense model, each retrieved
    at least ``depth`` deep) and the depth. Output: document ids, all in the
    corpus (ids a run or the qrels name outside the corpus are left out).
    """
    known = set(corpus_ids)
    pool = {doc for judged in dev_qrels.values() for doc in judged}
    for run in candidate_runs:
        for qid in dev_qrels:
            pool |= top_documents(run.get(qid, {}), depth)
    return pool & known


def pool_report(
    full_score: float, pool_score: float, *, n_pool: int | None = None, n_corpus: int | None = None
) -> dict[str, Any]:
    """Return how the base score on the pool compares with the full corpus (for the report).

    Inputs: the base model's dev NDCG@10 on the full corpus and on the pool;
    optionally the pool and corpus sizes. Output: ``{"full": .., "pool": ..,
    "difference": pool - full, "n_pool": .., "n_corpus": ..}``.
    """
    out: dict[str, Any] = {
        "full": round(full_score, 6),
        "pool": round(pool_score, 6),
        "difference": round(pool_score - full_score, 6),
    }
    if n_pool is not None:
        out["n_pool"] = n_pool
    if n_corpus is not None:
        out["n_corpus"] = n_corpus
    return out


def candidate_runs(
    corpus: Mapping[str, Document],
    queries: Mapping[str, str],
    model: str | SentenceTransformer,
    depth: int,
    *,
    max_seq_length: int | None = None,
    cache_dir: Path | None = None,
    text: TextConfig = DEFAULT_TEXT,
) -> list[Run]:
    """Return the BM25 run and the base dense run (exact search) of ``queries`` over the whole corpus.

    Inputs: the corpus, ``{qid: query text}``, the base model (name, path or
    loaded model; a loaded model gets ``max_seq_length`` set when given), the
    depth, an embedding cache folder (None: no cache) and the ``[text]`` settings.
    Output: ``[bm25_run, dense_run]``, each ``depth`` deep.
    """
    from domainfit.retrieval.dense import DenseRetriever
    from domainfit.retrieval.lexical import BM25Retriever

    bm25 = BM25Retriever(text=text)
    bm25.index(corpus)
    dense = DenseRetriever(model, max_seq_length=max_seq_length, cache_dir=cache_dir, text=text)
    dense.index(corpus)
    return [bm25.search(dict(queries), k=depth), dense.search(dict(queries), k=depth)]


def pool_evaluator(
    corpus: Mapping[str, Document],
    queries: Mapping[str, str],
    qrels: Qrels,
    pool: Iterable[str] | None = None,
    *,
    batch_size: int = 32,
) -> Any:
    """Build a sentence-transformers IR evaluator over the pool (None: the whole corpus).

    Inputs: the corpus, ``{qid: query text}``, the qrels (grade > 0 counts as
    relevant; queries without a relevant document are left out), the pool.
    Output: an ``InformationRetrievalEvaluator`` named ``dev`` with NDCG@10 as
    its primary metric, query and document prompts as in training.
    Raises ValueError when no query has a relevant document.
    """
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    relevant = {qid: {d for d, g in docs.items() if g > 0} for qid, docs in qrels.items() if qid in queries}
    relevant = {qid: docs for qid, docs in relevant.items() if docs}
    if not relevant:
        raise ValueError("no dev query has a relevant document")
    keep = set(corpus) if pool is None else set(pool) & set(corpus)
    keep |= set().union(*relevant.values()) & set(corpus)
    return InformationRetrievalEvaluator(
        queries={qid: queries[qid] for qid in relevant},
        corpus={did: corpus[did].full_text() for did in corpus if did in keep},
        relevant_docs=relevant,
        name=EVALUATOR_NAME,
        batch_size=batch_size,
        write_csv=False,
        ndcg_at_k=[10],
        mrr_at_k=[10],
        map_at_k=[100],
        accuracy_at_k=[1, 10],
        precision_recall_at_k=[10, 100],
        query_prompt_name="query",
        corpus_prompt_name="document",
        show_progress_bar=False,
    )
