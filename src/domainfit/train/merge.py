"""Merge fine-tuned weights with the base weights (linear interpolation), weight chosen on dev.

``merged = lam * fine_tuned + (1 - lam) * base`` for every floating-point
parameter; ``lam = 1`` is the fine-tuned model, ``lam = 0`` the base. A lower
``lam`` keeps more of the base model's general ability at some cost in domain
quality; the dev split decides.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: Interpolation weights tried, fine-tuned share.
MERGE_GRID: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)


def interpolate(base: SentenceTransformer, tuned: SentenceTransformer, lam: float) -> SentenceTransformer:
    """Return a new model whose weights are ``lam * tuned + (1 - lam) * base``.

    Requirements: both models share an architecture (the fine-tuned one was trained from the base).
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"interpolation weight must be in [0, 1], got {lam}")
    base_state = base.state_dict()
    tuned_state = tuned.state_dict()
    if base_state.keys() != tuned_state.keys():
        raise ValueError("the models have different parameters; merge needs the base the model was trained from")
    merged = copy.deepcopy(tuned)
    state = {}
    for name, weight in tuned_state.items():
        other = base_state[name]
        state[name] = lam * weight + (1.0 - lam) * other if weight.is_floating_point() else weight
    merged.load_state_dict(state)
    return merged


@dataclass
class MergeChoice:
    """The chosen interpolation weight and the dev score of every weight tried."""

    weight: float
    scores: dict[float, float]


def choose_merge(
    base: SentenceTransformer,
    tuned: SentenceTransformer,
    score: Callable[[SentenceTransformer], float],
    grid: Sequence[float] = MERGE_GRID,
    tolerance: float = 0.005,
) -> tuple[SentenceTransformer, MergeChoice]:
    """Score each weight on dev and pick the smallest within ``tolerance`` of the best.

    Preferring the smallest good weight keeps as much of the base model as the
    domain allows. Output: the merged model and the choice.
    """
    scores = {lam: score(interpolate(base, tuned, lam)) for lam in grid}
    best = max(scores.values())
    weight = min(lam for lam, s in scores.items() if s >= best - tolerance)
    return interpolate(base, tuned, weight), MergeChoice(weight, scores)
