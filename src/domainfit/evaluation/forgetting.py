"""Forgetting checks: how well the fine-tuned model still handles general text.

Three measures: with labels, the NDCG@10 drop on a general BEIR set; without
labels, the overlap of each general text's nearest neighbours under the base
and the fine-tuned model (1.0 = the neighbourhood structure is unchanged), and
the mean cosine between each text's base and fine-tuned embedding (1.0 = the
embeddings did not move). General texts are encoded as documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from domainfit.retrieval.dense import encode_texts, exact_search
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def neighbour_overlap(
    base: SentenceTransformer,
    tuned: SentenceTransformer,
    texts: list[str],
    k: int = 10,
    text: TextConfig = DEFAULT_TEXT,
) -> tuple[float, np.ndarray]:
    """Mean overlap of the k nearest neighbours (self excluded) of each text under two models.

    Inputs: the two models, at least ``k + 1`` texts, ``k``, the ``[text]`` settings. Output: the mean
    overlap in [0, 1] and the per-text overlaps.
    """
    if len(texts) <= k:
        raise ValueError(f"need more than k={k} texts, got {len(texts)}")
    vectors = [
        encode_texts(model, texts, description=f"forgetting check: {name}", task="document", text=text)
        for model, name in ((base, "base"), (tuned, "fine-tuned"))
    ]
    return overlap_of(vectors[0], vectors[1], k)


def overlap_of(before: np.ndarray, after: np.ndarray, k: int = 10) -> tuple[float, np.ndarray]:
    """Mean overlap of each row's k nearest neighbours (self excluded) in two embeddings of the same texts.

    Inputs: two L2-normalised matrices with one row per text (more than ``k`` rows), ``k``.
    Output: the mean overlap in [0, 1] and the per-text overlaps.
    """
    if before.shape[0] != after.shape[0] or before.shape[0] <= k:
        raise ValueError(f"need the same texts in both, more than k={k}; got {before.shape[0]} and {after.shape[0]}")
    neighbours = []
    for vectors in (before, after):
        idx, _ = exact_search(vectors, vectors, k + 1, backend="numpy")
        neighbours.append([set(row[row != i][:k].tolist()) for i, row in enumerate(idx)])
    per_text = np.array([len(a & b) / k for a, b in zip(neighbours[0], neighbours[1], strict=True)])
    return float(per_text.mean()), per_text


def base_similarity(
    base: SentenceTransformer, tuned: SentenceTransformer, texts: list[str], text: TextConfig = DEFAULT_TEXT
) -> float:
    """Mean cosine between each text's embedding under the base and under the fine-tuned model.

    Inputs: two models with the same embedding width (the fine-tuned one trained
    from the base) and a non-empty list of texts. Output: a value in [-1, 1].
    """
    if not texts:
        raise ValueError("need at least one text")
    before = encode_texts(base, texts, description="drift check: base", task="document", text=text)
    after = encode_texts(tuned, texts, description="drift check: fine-tuned", task="document", text=text)
    return cosine_of(before, after)


def cosine_of(before: np.ndarray, after: np.ndarray) -> float:
    """Mean row-wise cosine of two L2-normalised embeddings of the same texts (same shape)."""
    if before.shape != after.shape:
        raise ValueError(f"embedding shapes differ: {before.shape} vs {after.shape}")
    return float(np.sum(before * after, axis=1).mean())
