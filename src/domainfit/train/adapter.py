"""The query-side adapter: a map on query embeddings only, trained against frozen document embeddings.

Documents keep the base model's vectors (nothing stored is re-embedded); a
query's base embedding goes through a linear map (identity at start) or a small
residual MLP (``x + W2 relu(W1 x)``, its last layer zero at start, so also the
identity), then is L2-normalised. Training is MultipleNegativesRankingLoss over
the same pairs and hard negatives as fine-tuning: each query against its
positive, the batch's other positives and every hard negative, at scale
``1 / temperature``.

Saved and loaded by `domainfit.retrieval.query_adapter` (two files; never
pickle): `load_query_adapter` gives back a numpy function for any query path
(evaluation, the search service), without torch.

Example::

    fit = fit_query_adapter(query_vecs, positive_vecs, negative_vecs, kind="linear")
    save_adapter(folder, fit, base_model="sentence-transformers/all-MiniLM-L6-v2")
    adapter = load_query_adapter(folder)
    query_vectors = adapter(base_model_query_vectors)   # (n, d) -> (n, d), unit rows
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from domainfit.retrieval.query_adapter import QueryMap, load_query_adapter, map_of, save_query_adapter

if TYPE_CHECKING:
    import torch

__all__ = ["AdapterFit", "fit_query_adapter", "load_query_adapter", "save_adapter"]


def _module(kind: str, dim: int, hidden: int) -> torch.nn.Module:
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

    if kind == "linear":
        return Linear()
    if kind == "mlp":
        return Residual()
    raise ValueError(f"unknown adapter kind {kind!r}; use linear or mlp")


@dataclass
class AdapterFit:
    """A trained adapter and how training went (dev NDCG@10 by epoch, the epoch kept)."""

    module: Any
    kind: str
    dim: int
    hidden: int
    epochs_run: int
    best_epoch: int
    dev_history: list[dict[str, float]] = field(default_factory=list)
    loss_history: list[dict[str, float]] = field(default_factory=list)

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
    epochs: int = 30,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    temperature: float = 0.05,
    seed: int = 13,
    dev_score: Callable[[QueryMap], float] | None = None,
    patience: int = 5,
) -> AdapterFit:
    """Train the adapter on embeddings: MNRL of each mapped query against in-batch positives and hard negatives.

    Inputs: base query embeddings (n, d), their positives' document embeddings
    (n, d), hard negatives (n, k, d) or None, the adapter kind and width, epochs,
    batch size, learning rate, temperature, seed; ``dev_score`` (a numpy query map
    -> dev NDCG@10) is called at start and after every epoch, the best epoch is
    kept and training stops after ``patience`` epochs without a gain. Output: an `AdapterFit`.
    """
    import torch

    torch.manual_seed(seed)
    n, dim = queries.shape
    module = _module(kind, dim, hidden)
    optimiser = torch.optim.AdamW(module.parameters(), lr=learning_rate, weight_decay=0.0)
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    p = torch.from_numpy(np.ascontiguousarray(positives, dtype=np.float32))
    neg = torch.from_numpy(np.ascontiguousarray(negatives, dtype=np.float32)) if negatives is not None else None
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
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(idx)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss) * len(idx)
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
    return AdapterFit(module, kind, dim, hidden, epochs_run, best_epoch, dev, losses)


def save_adapter(folder: Path, fit: AdapterFit, base_model: str, info: dict[str, Any] | None = None) -> None:
    """Save a trained adapter into ``folder`` (see `domainfit.retrieval.query_adapter.save_query_adapter`)."""
    save_query_adapter(folder, fit.kind, _state(fit.module), base_model, hidden=fit.hidden, info=info)
