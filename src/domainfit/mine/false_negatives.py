"""False-negative checks of hard-negative mining (see `domainfit.mine.negatives`).

Text checks: `text_hash` (equal for texts that differ only in case/punctuation) and the
token Jaccard of two texts (near copies of a positive). Cross-encoder checks:
`CrossEncoderScorer` scores (query, passage) pairs with an optional cross-encoder
(anything with the ``CrossEncoder.predict`` API), keeps the lazy, memoised scores
of one pair in `CrossScores` and applies the cross-encoder margins of `MiningSettings`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from domainfit.data.splits import normalise_text
from domainfit.mine.mining_types import MiningSettings

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


def text_tokens(text: str) -> frozenset[str]:
    """Return the token set of a text after `normalise_text`."""
    return frozenset(normalise_text(text).split())


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Token Jaccard similarity of two token sets (0 when both are empty)."""
    return len(a & b) / len(a | b) if a or b else 0.0


def text_hash(text: str) -> int:
    """Return a 64-bit hash of ``normalise_text(text)`` (equal for texts that differ only in case/punctuation)."""
    return int.from_bytes(hashlib.blake2b(normalise_text(text).encode(), digest_size=8).digest(), "little", signed=True)


@dataclass
class CrossScores:
    """Cross-encoder scores of one pair, computed lazily and memoised by document index."""

    query: str
    positive: float
    scores: dict[int, float] = field(default_factory=dict)


class CrossEncoderScorer:
    """Cross-encoder scores and margins for the miner; ``scored`` counts the (query, passage) pairs scored."""

    def __init__(self, cross_encoder: CrossEncoder | None, settings: MiningSettings) -> None:
        self.cross_encoder = cross_encoder
        self.settings = settings
        self.scored = 0

    def predict(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Cross-encoder scores for (query, passage) pairs."""
        assert self.cross_encoder is not None
        self.scored += len(pairs)
        scores = self.cross_encoder.predict(
            pairs, batch_size=self.settings.ce_batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return np.asarray(scores, dtype=np.float32).reshape(len(pairs), -1)[:, -1]

    def cross_scores(self, query: str, positive: str) -> CrossScores | None:
        """Start the lazy cross-encoder scores of one pair (None without a cross-encoder)."""
        if self.cross_encoder is None:
            return None
        return CrossScores(query, float(self.predict([(query, positive)])[0]))

    def score_ahead(
        self, cross: CrossScores, idx: np.ndarray, k: int, need: int, text_of: Callable[[int], str]
    ) -> None:
        """Score the pool's next candidates from position ``k`` (a few more than needed) in one call.

        ``idx`` are the pool's candidate positions and ``text_of(j)`` the text of its ``j``-th candidate.
        """
        if int(idx[k]) in cross.scores:
            return
        ahead = [j for j in range(k, min(k + 2 * need + 2, len(idx))) if int(idx[j]) not in cross.scores]
        texts = [text_of(j) for j in ahead]
        scores = self.predict([(cross.query, text) for text in texts])
        ahead = [int(idx[j]) for j in ahead]
        cross.scores.update(zip(ahead, scores.tolist(), strict=True))

    def passes_cross_margin(self, score: float, positive: float) -> bool:
        """Return False when a cross-encoder score is within a cross-encoder margin of the positive's."""
        cfg = self.settings
        if cfg.ce_absolute_margin is not None and score + cfg.ce_absolute_margin > positive:
            return False
        return not (cfg.ce_relative_margin is not None and score > positive - abs(positive) * cfg.ce_relative_margin)
