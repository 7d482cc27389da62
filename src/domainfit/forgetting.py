"""Forgetting checks: how well the fine-tuned model still handles general text.

Two measures: with labels, the NDCG@10 drop on a general BEIR set; without
labels, the overlap of each general text's nearest neighbours under the base
and the fine-tuned model (1.0 = the neighbourhood structure is unchanged).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from domainfit.retrieval.dense import encode_texts, exact_search

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def neighbour_overlap(
    base: SentenceTransformer, tuned: SentenceTransformer, texts: list[str], k: int = 10
) -> tuple[float, np.ndarray]:
    """Mean overlap of the k nearest neighbours (self excluded) of each text under two models.

    Inputs: the two models, at least ``k + 1`` texts, ``k``. Output: the mean
    overlap in [0, 1] and the per-text overlaps.
    """
    if len(texts) <= k:
        raise ValueError(f"need more than k={k} texts, got {len(texts)}")
    neighbours = []
    for model, name in ((base, "base"), (tuned, "fine-tuned")):
        vectors = encode_texts(model, texts, description=f"forgetting check: {name}")
        idx, _ = exact_search(vectors, vectors, k + 1, backend="numpy")
        neighbours.append([set(row[row != i][:k].tolist()) for i, row in enumerate(idx)])
    per_text = np.array([len(a & b) / k for a, b in zip(neighbours[0], neighbours[1], strict=True)])
    return float(per_text.mean()), per_text
