"""The query-side adapter: a map on query embeddings only, trained against frozen document embeddings.

Documents keep the base model's vectors (nothing stored is re-embedded); a
query's base embedding goes through a linear map (identity at start), a
low-rank residual ``x + U V^T x`` (rank r, U zero at start) or a small residual
MLP (``x + W2 relu(W1 x)``, its last layer zero at start), then is
L2-normalised. Every kind equals the identity before training, so dev NDCG@10
at epoch 0 is the base model's. Training is MultipleNegativesRankingLoss on the
fixed document embeddings (computed once): each query against its positive,
the batch's other positives (a positive shared by two queries of the batch is
not counted as the other's negative) and, when given, the mined hard
negatives, at scale ``1 / temperature``; the best dev epoch is kept.

`fit_on_dev` trains with and without the hard negatives and keeps the better
on dev (on the demo the mined negatives lowered dev NDCG@10; the choice is
recorded).

Saved and loaded by `domainfit.retrieval.query_adapter` (two files; never
pickle): `load_query_adapter` gives back a numpy function for any query path
(evaluation, the search service), without torch.

Example::

    fit = fit_query_adapter(query_vecs, positive_vecs, negative_vecs, kind="lowrank", rank=32)
    save_adapter(folder, fit, base_model="sentence-transformers/all-MiniLM-L6-v2")
    adapter = load_query_adapter(folder)
    query_vectors = adapter(base_model_query_vectors)   # (n, d) -> (n, d), unit rows
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from domainfit.retrieval.query_adapter import QueryMap, load_query_adapter, map_of, save_query_adapter

if TYPE_CHECKING:
    import torch

__all__ = ["KINDS", "AdapterFit", "fit_on_dev", "fit_query_adapter", "load_query_adapter", "save_adapter"]

#: The adapter kinds, fewest parameters first for the low-rank and MLP ones' usual widths.
KINDS = ("linear", "lowrank", "mlp")


def _module(kind: str, dim: int, hidden: int, rank: int = 32) -> torch.nn.Module:
    """Build the adapter as a torch module, equal to the identity at start."""
    import torch

    class Linear(torch.nn.Module):
        """``x W^T + b`` with W = I, b = 0 at start."""

        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(dim, dim)
            with torch.no_grad():
                self.linear.weight.copy_(torch.eye(dim))
                self.linear.bias.zero_()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.normalize(self.linear(x), dim=-1)

    class Residual(torch.nn.Module):
        """``x + W2 relu(W1 x + b1) + b2`` with W2 = 0, b2 = 0 at start."""

        def __init__(self) -> None:
            super().__init__()
            self.up = torch.nn.Linear(dim, hidden)
            self.down = torch.nn.Linear(hidden, dim)
            with torch.no_grad():
                self.down.weight.zero_()
                self.down.bias.zero_()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.normalize(x + self.down(torch.relu(self.up(x))), dim=-1)

    class LowRank(torch.nn.Module):
        """``x + U (V x)`` with V (r x d) random and U (d x r) zero at start: W = I + U V^T."""

        def __init__(self) -> None:
            super().__init__()
            self.down = torch.nn.Linear(dim, rank, bias=False)
            self.up = torch.nn.Linear(rank, dim, bias=False)
            with torch.no_grad():
                torch.nn.init.normal_(self.down.weight, std=dim**-0.5)
                self.up.weight.zero_()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.normalize(x + self.up(self.down(x)), dim=-1)

    if kind == "linear":
        return Linear()
    if kind == "lowrank":
        return LowRank()
    if kind == "mlp":
        return Residual()
    raise ValueError(f"unknown adapter kind {kind!r}; use one of {', '.join(KINDS)}")


@dataclass
class AdapterFit:
    """A trained adapter and how training went (dev NDCG@10 by epoch, the epoch kept)."""

    module: Any
    kind: str
    dim: int
    hidden: int
    rank: int
    epochs_run: int
    best_epoch: int
    dev_history: list[dict[str, float]] = field(default_factory=list)
    loss_history: list[dict[str, float]] = field(default_factory=list)
    hard_negatives: int = 0

    @property
    def best_dev(self) -> float | None:
        """Return the best dev NDCG@10 seen (None without dev scoring)."""
        return max((h["ndcg@10"] for h in self.dev_history), default=None)

    def as_numpy(self) -> QueryMap:
        """Return the trained map as a numpy function (the same one `load_query_adapter` returns)."""
        return map_of(self.kind, _state(self.module))


def _state(module: Any) -> dict[str, np.ndarray]:
    """Return the module's weights as float32 numpy arrays."""
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in module.state_dict().items()}


def fit_query_adapter(
    queries: np.ndarray,
    positives: np.ndarray,
    negatives: np.ndarray | None,
    *,
    kind: str = "linear",
    hidden: int = 256,
    rank: int = 32,
    epochs: int = 60,
    batch_size: int = 32,
    learning_rate: float = 3e-4,
    temperature: float = 0.05,
    seed: int = 13,
    dev_score: Callable[[QueryMap], float] | None = None,
    patience: int = 8,
    positive_keys: Sequence[str] | None = None,
) -> AdapterFit:
    """Train the adapter on embeddings: MNRL of each mapped query against in-batch positives and hard negatives.

    Inputs: base query embeddings (n, d), their positives' document embeddings
    (n, d), hard negatives (n, k, d) or None, the adapter kind, MLP width and
    low-rank rank, epochs, batch size, learning rate, temperature, seed;
    ``dev_score`` (a numpy query map -> dev NDCG@10) is called at start and after
    every epoch, the best epoch is kept and training stops after ``patience``
    epochs without a gain; ``positive_keys`` (one per pair, e.g. the positive's
    text) marks pairs sharing a positive, which are not each other's negatives.
    Output: an `AdapterFit`.
    """
    import torch

    torch.manual_seed(seed)
    n, dim = queries.shape
    module = _module(kind, dim, hidden, rank)
    optimiser = torch.optim.AdamW(module.parameters(), lr=learning_rate, weight_decay=0.0)
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    p = torch.from_numpy(np.ascontiguousarray(positives, dtype=np.float32))
    neg = torch.from_numpy(np.ascontiguousarray(negatives, dtype=np.float32)) if negatives is not None else None
    ids = {key: i for i, key in enumerate(positive_keys)} if positive_keys is not None else None
    same = torch.tensor([ids[key] for key in positive_keys]) if ids is not None and positive_keys else None
    order, rng = list(range(n)), random.Random(seed)
    best_state = {k: v.clone() for k, v in module.state_dict().items()}
    best, best_epoch, dev, losses, since = -1.0, 0, [], [], 0
    if dev_score is not None:
        best = dev_score(map_of(kind, _state(module)))
        dev.append({"epoch": 0, "ndcg@10": best})
    epochs_run = 0
    for epoch in range(1, epochs + 1):
        rng.shuffle(order)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = torch.tensor(order[start : start + batch_size])
            mapped = module(q[idx])
            docs = p[idx] if neg is None else torch.cat([p[idx], neg[idx].reshape(-1, dim)])
            logits = mapped @ docs.T / temperature
            if same is not None:  # another query's positive that is this query's positive too: not a negative
                shared = torch.zeros(logits.shape, dtype=torch.bool)  # the hard-negative columns stay unmasked
                shared[:, : len(idx)] = same[idx][:, None] == same[idx][None, :]
                shared.fill_diagonal_(False)
                logits = logits.masked_fill(shared, float("-inf"))
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(idx)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        epochs_run = epoch
        losses.append({"epoch": epoch, "loss": total / n})
        if dev_score is None:
            best_state, best_epoch = {k: v.clone() for k, v in module.state_dict().items()}, epoch
            continue
        score = dev_score(map_of(kind, _state(module)))
        dev.append({"epoch": epoch, "ndcg@10": score})
        if score > best:
            best, best_epoch, since = score, epoch, 0
            best_state = {k: v.clone() for k, v in module.state_dict().items()}
        else:
            since += 1
            if since >= patience:
                break
    module.load_state_dict(best_state)
    k = int(negatives.shape[1]) if negatives is not None else 0
    return AdapterFit(module, kind, dim, hidden, rank, epochs_run, best_epoch, dev, losses, hard_negatives=k)


def fit_on_dev(
    queries: np.ndarray,
    positives: np.ndarray,
    negatives: np.ndarray | None,
    dev_score: Callable[[QueryMap], float],
    **settings: Any,
) -> tuple[AdapterFit, list[dict[str, Any]]]:
    """Train with and without the hard negatives (when there are any); keep the better dev NDCG@10 (ties: without).

    Inputs: as `fit_query_adapter` (``settings`` are its keyword arguments).
    Output: the kept fit and one record per trial (hard negatives, best dev, best epoch).
    """
    options = [None] if negatives is None else [None, negatives]
    trials: list[dict[str, Any]] = []
    kept: AdapterFit | None = None
    for option in options:
        fit = fit_query_adapter(queries, positives, option, dev_score=dev_score, **settings)
        trials.append(
            {"hard_negatives": fit.hard_negatives, "best_dev_ndcg@10": fit.best_dev, "best_epoch": fit.best_epoch}
        )
        if kept is None or (fit.best_dev or -1.0) > (kept.best_dev or -1.0):
            kept = fit
    assert kept is not None
    return kept, trials


def save_adapter(folder: Path, fit: AdapterFit, base_model: str, info: dict[str, Any] | None = None) -> None:
    """Save a trained adapter into ``folder`` (see `domainfit.retrieval.query_adapter.save_query_adapter`)."""
    save_query_adapter(folder, fit.kind, _state(fit.module), base_model, hidden=fit.hidden, rank=fit.rank, info=info)
