"""Regularisation towards the base model: distil its embeddings of general text while fine-tuning.

When ``train.regularize = "mse"``, the base model encodes a sample of general
(query, passage) pairs once, before training (the teacher). Every training
step then adds, to the domain loss of its batch, sentence-transformers'
``MSELoss`` between the model's current embeddings of a few of those pairs
(the query encoded as a query, the passage as a document, so both sides, or
both routes of separate encoders, are held) and the teacher's. The term is
scaled to the squared L2 distance per text, times ``regularize_weight`` (for
normalised embeddings that is ``2 * (1 - cosine)``).

Why in every step rather than as a second dataset with its own batches: with
Adam, a separate regularisation batch mostly replays the momentum of the
domain batches before it, so it pulled the model back far less than the same
term added to the domain gradient (measured on the test fixture).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def pairs_per_step(batch_size: int, share: float) -> int:
    """Return how many general pairs join each batch so they are ``share`` of its examples (at least one)."""
    return max(1, math.ceil(batch_size * share / (1.0 - share)))


class BaseAnchoredLoss(nn.Module):
    """A domain loss plus an MSE pull of general texts' embeddings towards the base model's.

    Inputs: the domain loss (it stores ``model``), the general queries and
    passages, their teacher embeddings ``(n, 2, width)`` (query, passage), the
    weight, general pairs per step, the query and document prompts, a seed.
    Output of ``forward``: ``domain loss + weight * squared distance`` (a tensor,
    or the domain loss's dict with a ``regularize`` entry added).
    """

    targets: Tensor
    model: SentenceTransformer

    def __init__(
        self,
        loss: nn.Module,
        queries: Sequence[str],
        passages: Sequence[str],
        targets: Tensor,
        *,
        weight: float,
        per_step: int,
        prompts: tuple[str, str] = ("", ""),
        seed: int = 13,
    ) -> None:
        from sentence_transformers.sentence_transformer.losses import MSELoss

        super().__init__()
        if not len(queries) == len(passages) == targets.shape[0] or targets.dim() != 3:
            raise ValueError("queries, passages and targets (n, 2, width) must match")
        self.loss = loss
        # the trainer swaps wrapped models into every loss that stores one
        self.model = cast("SentenceTransformer", loss.model)
        self.mse = MSELoss(self.model)
        self.queries, self.passages = list(queries), list(passages)
        self.register_buffer("targets", targets.float(), persistent=False)
        self.weight = float(weight)
        self.per_step = int(per_step)
        self.prompts = prompts
        self._rng = random.Random(seed)
        self._order: list[int] = []

    def _next(self) -> list[int]:
        """Return the next ``per_step`` pair indices, walking through reshuffled passes over the pairs."""
        out: list[int] = []
        while len(out) < self.per_step:
            if not self._order:
                self._order = list(range(len(self.queries)))
                self._rng.shuffle(self._order)
            out.append(self._order.pop())
        return out

    def _features(self, texts: list[str], task: str, prompt: str) -> dict[str, Any]:
        """Tokenise texts as the trainer's collator does (prompt prepended, route stamped), on the model's device."""
        features = self.model.preprocess(texts, prompt=prompt or None, task=task)
        device = self.targets.device
        features = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in features.items()}
        features["task"] = task
        return features

    def penalty(self) -> Tensor:
        """Return the squared distance of the next general pairs' embeddings to the teacher's (mean per text).

        Dropout is off for this forward pass (gradients still flow): the teacher
        embeddings are deterministic, so a noisy student would be pulled towards
        the noise instead of towards the base model.
        """
        idx = self._next()
        columns = [
            self._features([self.queries[i] for i in idx], "query", self.prompts[0]),
            self._features([self.passages[i] for i in idx], "document", self.prompts[1]),
        ]
        targets = self.targets[idx]
        training = self.model.training
        self.model.eval()
        try:
            return self.mse(columns, targets) * targets.shape[-1]
        finally:
            self.model.train(training)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Any:
        """Return the domain loss of the batch plus the weighted regularisation term."""
        main = self.loss(sentence_features, labels)
        term = self.weight * self.penalty()
        if isinstance(main, dict):
            return {**main, "regularize": term}
        return main + term

    def get_config_dict(self) -> dict[str, Any]:
        """Return the knobs recorded in the model card."""
        return {"regularize": "mse", "weight": self.weight, "pairs_per_step": self.per_step}


@dataclass
class Regularizer:
    """What regularisation added to a run: the wrapped loss and bookkeeping for the result."""

    loss: BaseAnchoredLoss
    pairs: int
    per_step: int
    source: str
    weight: float

    def describe(self) -> dict[str, Any]:
        """Return the settings recorded in ``result.json``."""
        return {
            "method": "mse",
            "pairs": self.pairs,
            "pairs_per_step": self.per_step,
            "source": self.source,
            "weight": self.weight,
        }


def build_regularizer(
    model: SentenceTransformer,
    loss: nn.Module,
    pairs: Sequence[tuple[str, str]],
    *,
    steps: int,
    batch_size: int,
    share: float,
    weight: float,
    seed: int,
    source: str,
) -> Regularizer:
    """Wrap the domain loss so every step also pulls general embeddings towards the untrained model's.

    Inputs: the model before training (its embeddings are the teacher), the
    domain loss, general (query, passage) pairs, the planned number of steps,
    batch size, share of general pairs per batch, weight, seed and a label of
    where the pairs came from. Only as many pairs as the run will use are
    encoded (``steps x pairs per step``, at most all of them). Output: a `Regularizer`.
    """
    import numpy as np

    if not pairs:
        raise ValueError("regularisation needs general (query, passage) pairs")
    per_step = pairs_per_step(batch_size, share)
    picked = list(range(len(pairs)))
    random.Random(seed).shuffle(picked)
    picked = picked[: max(per_step, min(len(pairs), per_step * max(1, steps)))]
    queries = [pairs[i][0] for i in picked]
    passages = [pairs[i][1] for i in picked]
    encode: dict[str, Any] = {"batch_size": batch_size, "convert_to_numpy": True, "show_progress_bar": False}
    with torch.no_grad():
        targets = np.stack([model.encode_query(queries, **encode), model.encode_document(passages, **encode)], axis=1)
    prompts = ((model.prompts or {}).get("query") or "", (model.prompts or {}).get("document") or "")
    wrapped = BaseAnchoredLoss(
        loss, queries, passages, torch.as_tensor(targets), weight=weight, per_step=per_step, prompts=prompts, seed=seed
    )
    return Regularizer(wrapped, pairs=len(picked), per_step=per_step, source=source, weight=weight)
