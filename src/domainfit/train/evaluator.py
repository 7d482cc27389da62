"""Dev-split evaluation during training (sentence-transformers InformationRetrievalEvaluator)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domainfit.data.beir import BeirDataset
from domainfit.text.config import DEFAULT_TEXT, TextConfig

EVALUATOR_NAME = "dev"


@dataclass(frozen=True)
class PoolSource:
    """How the dev pool is ranked: the base model (name or path), depth, window, embedding cache, text settings."""

    model: str
    depth: int = 20
    max_seq_length: int | None = None
    cache_dir: Path | None = None
    text: TextConfig = DEFAULT_TEXT


def dev_evaluator(
    dataset: BeirDataset,
    split: str,
    *,
    max_corpus: int = 1000,
    seed: int = 13,
    batch_size: int = 32,
    corpus: str = "sample",
    pool: PoolSource | None = None,
    max_queries: int | None = None,
) -> Any | None:
    """Build an IR evaluator on ``split``: its queries and the documents they are ranked among.

    ``corpus`` says which documents: ``"full"`` every document; ``"pool"`` the
    judged documents plus the top ``pool.depth`` of BM25 and the base model for
    each query (as hard as the full corpus: the base model's top 10 are all
    there, so its score is the full corpus' score); ``"sample"`` the judged
    documents plus random others up to ``max_corpus`` (cheap, but easier than
    the full corpus, so it can hide that a model got worse). ``max_queries``:
    at most this many of the split's queries, sampled with ``seed`` (None:
    all); the pool is then built for those queries only. Returns None when
    the split does not exist or has no relevant pairs.
    """
    from domainfit.recipe.devpool import pool_evaluator

    qrels = dataset.qrels.get(split)
    if not qrels:
        return None
    relevant = {qid: {d for d, g in docs.items() if g > 0} for qid, docs in qrels.items() if qid in dataset.queries}
    relevant = {qid: docs for qid, docs in relevant.items() if docs}
    if not relevant:
        return None
    if max_queries is not None and len(relevant) > max_queries:
        chosen = random.Random(seed).sample(sorted(relevant), max_queries)
        relevant = {qid: relevant[qid] for qid in sorted(chosen)}
    keep = set().union(*relevant.values())
    if corpus == "full":
        keep = set(dataset.corpus)
    elif corpus == "pool" and pool is not None:
        from domainfit.recipe.devpool import candidate_runs, dev_pool

        runs = candidate_runs(
            dataset.corpus,
            {qid: dataset.queries[qid].text for qid in relevant},
            pool.model,
            pool.depth,
            max_seq_length=pool.max_seq_length,
            cache_dir=pool.cache_dir,
            text=pool.text,
        )
        keep = dev_pool(dataset.corpus, {q: qrels[q] for q in relevant}, runs, pool.depth)
    else:
        others = sorted(set(dataset.corpus) - keep)
        random.Random(seed).shuffle(others)
        keep.update(others[: max(0, max_corpus - len(keep))])
    texts = {qid: dataset.queries[qid].text for qid in relevant}
    return pool_evaluator(dataset.corpus, texts, {q: qrels[q] for q in relevant}, keep, batch_size=batch_size)


def primary_metric_key() -> str:
    """Return the trainer's log key of the dev NDCG@10 (used to keep the best checkpoint)."""
    return f"eval_{EVALUATOR_NAME}_cosine_ndcg@10"
