"""Dev-split evaluation during training (sentence-transformers InformationRetrievalEvaluator)."""

from __future__ import annotations

import random
from typing import Any

from domainfit.data.beir import BeirDataset

EVALUATOR_NAME = "dev"


def dev_evaluator(
    dataset: BeirDataset,
    split: str,
    *,
    max_corpus: int = 1000,
    seed: int = 13,
    batch_size: int = 32,
) -> Any | None:
    """Build an IR evaluator on ``split``: its queries, their relevant documents plus random others.

    The corpus is capped at ``max_corpus`` documents (every relevant document is
    kept) so evaluating every few steps stays affordable on a CPU. Returns None
    when the split does not exist or has no relevant pairs.
    """
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    qrels = dataset.qrels.get(split)
    if not qrels:
        return None
    relevant = {qid: {d for d, g in docs.items() if g > 0} for qid, docs in qrels.items()}
    relevant = {qid: docs for qid, docs in relevant.items() if docs}
    if not relevant:
        return None
    keep = set().union(*relevant.values())
    others = sorted(set(dataset.corpus) - keep)
    random.Random(seed).shuffle(others)
    keep.update(others[: max(0, max_corpus - len(keep))])
    return InformationRetrievalEvaluator(
        queries={qid: dataset.queries[qid].text for qid in relevant},
        corpus={did: dataset.corpus[did].full_text() for did in sorted(keep)},
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
    )


def primary_metric_key() -> str:
    """Return the trainer's log key of the dev NDCG@10 (used to keep the best checkpoint)."""
    return f"eval_{EVALUATOR_NAME}_cosine_ndcg@10"
