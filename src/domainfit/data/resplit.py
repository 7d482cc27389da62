"""Re-split a BEIR folder's judged queries into train/dev/test by query family.

Input: a loaded dataset whose qrels (any splits) are pooled. Output: a new
dataset with ``train``/``dev``/``test`` qrels where no family crosses splits,
and the family of each query recorded in its metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

from domainfit.core.types import Qrels, Query
from domainfit.data.beir import BeirDataset
from domainfit.data.splits import Leak, check_qrels_leakage, derive_families, split_qrels, split_queries


@dataclass
class ResplitSummary:
    """What `resplit` did: queries and families per split, and the leaks found in the old splits."""

    queries_per_split: dict[str, int]
    families_per_split: dict[str, int]
    previous_leaks: list[Leak]


def pooled_qrels(dataset: BeirDataset) -> Qrels:
    """Union of every split's judgements (a pair judged twice keeps its highest grade)."""
    pooled: Qrels = {}
    for qrels in dataset.qrels.values():
        for qid, docs in qrels.items():
            target = pooled.setdefault(qid, {})
            for did, grade in docs.items():
                target[did] = max(grade, target.get(did, grade))
    return pooled


def resplit(
    dataset: BeirDataset,
    *,
    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2),
    seed: int = 13,
    overlap_threshold: float = 0.8,
) -> tuple[BeirDataset, ResplitSummary]:
    """Return a copy of ``dataset`` split by family, and a summary (with leaks of the old splits)."""
    leaks = check_qrels_leakage(dataset.qrels, dataset.queries, overlap_threshold=overlap_threshold)
    pooled = pooled_qrels(dataset)
    judged = {qid: dataset.queries[qid] for qid in pooled}
    families = derive_families(judged, pooled, overlap_threshold=overlap_threshold)
    split_of = split_queries(families, ratios=ratios, seed=seed)
    new_qrels = split_qrels(pooled, split_of)
    queries = {
        qid: Query(id=q.id, text=q.text, metadata={**q.metadata, "family": families.get(qid, q.metadata.get("family"))})
        if qid in families
        else q
        for qid, q in dataset.queries.items()
    }
    summary = ResplitSummary(
        queries_per_split={split: len(q) for split, q in new_qrels.items()},
        families_per_split={split: len({families[qid] for qid in q}) for split, q in new_qrels.items()},
        previous_leaks=leaks,
    )
    return BeirDataset(corpus=dataset.corpus, queries=queries, qrels=new_qrels), summary
