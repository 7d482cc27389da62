"""Loss registry: a loss name from the config -> a sentence-transformers loss.

Each entry also says which columns it consumes, so the data builder can shape
the dataset: ``("anchor", "positive", "negative_*")`` for ranking losses,
``("sentence1", "sentence2", "label")`` for pair losses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from domainfit.train.config import TrainConfig

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn

Layout = Literal["ranking", "triplet", "pair-label", "pair-score", "margin"]


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: its builder and the data layout it expects."""

    name: str
    layout: Layout
    build: Callable[[SentenceTransformer, TrainConfig], nn.Module]
    description: str


def _gather(cfg: TrainConfig) -> bool:
    """Gather in-batch negatives across processes only when there are several (else it only warns every step)."""
    from domainfit.train import distributed

    return cfg.gather_across_devices and distributed.world_size() > 1


def _mnrl(model: SentenceTransformer, cfg: TrainConfig) -> nn.Module:
    """MultipleNegativesRankingLoss (InfoNCE with scale = 1 / temperature)."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss(model, scale=1.0 / cfg.temperature, gather_across_devices=_gather(cfg))


def _cached_mnrl(model: SentenceTransformer, cfg: TrainConfig) -> nn.Module:
    """CachedMultipleNegativesRankingLoss (GradCache: large batches in little memory)."""
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

    return CachedMultipleNegativesRankingLoss(
        model,
        scale=1.0 / cfg.temperature,
        mini_batch_size=cfg.mini_batch_size,
        gather_across_devices=_gather(cfg),
    )


def _triplet(model: SentenceTransformer, cfg: TrainConfig) -> nn.Module:
    """TripletLoss with cosine distance."""
    from sentence_transformers.sentence_transformer.losses import TripletDistanceMetric, TripletLoss

    return TripletLoss(model, distance_metric=TripletDistanceMetric.COSINE, triplet_margin=cfg.triplet_margin)


def _contrastive(model: SentenceTransformer, cfg: TrainConfig) -> nn.Module:
    """ContrastiveLoss on (text, text, 0/1) pairs."""
    from sentence_transformers.sentence_transformer.losses import ContrastiveLoss

    return ContrastiveLoss(model, margin=cfg.contrastive_margin)


def _cosine(model: SentenceTransformer, cfg: TrainConfig) -> nn.Module:
    """CosineSimilarityLoss on (text, text, score in [0, 1]) pairs."""
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

    return CosineSimilarityLoss(model)


def _margin_mse(model: SentenceTransformer, cfg: TrainConfig) -> nn.Module:
    """MarginMSELoss: distil a teacher's score margin between positive and negative."""
    from sentence_transformers.sentence_transformer.losses import MarginMSELoss

    return MarginMSELoss(model)


REGISTRY: dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        LossSpec("mnrl", "ranking", _mnrl, "in-batch and hard negatives, InfoNCE"),
        LossSpec("cached-mnrl", "ranking", _cached_mnrl, "MNRL with GradCache for large effective batches"),
        LossSpec("triplet", "triplet", _triplet, "anchor/positive/negative with a margin"),
        LossSpec("contrastive", "pair-label", _contrastive, "pairs labelled 1 (relevant) or 0"),
        LossSpec("cosine", "pair-score", _cosine, "pairs with a similarity score"),
        LossSpec("margin-mse", "margin", _margin_mse, "teacher margin distillation (GPL recipe)"),
    )
}


def build_loss(model: SentenceTransformer, cfg: TrainConfig) -> tuple[nn.Module, LossSpec]:
    """Build the configured loss, wrapped in MatryoshkaLoss when ``matryoshka_dims`` is set.

    Output: the loss module and its `LossSpec`. Matryoshka dims larger than the
    model's embedding size are an error.
    """
    spec = REGISTRY[cfg.loss]
    loss = spec.build(model, cfg)
    if cfg.matryoshka_dims:
        from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss

        width = int((getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)() or 0)
        too_wide = [d for d in cfg.matryoshka_dims if d > width]
        if too_wide:
            raise ValueError(f"matryoshka_dims {too_wide} exceed the model's {width} dimensions")
        loss = MatryoshkaLoss(model, loss, matryoshka_dims=cfg.matryoshka_dims)
    return loss, spec


def loss_config(cfg: TrainConfig) -> dict[str, Any]:
    """Return the loss knobs recorded in reports and manifests."""
    return {
        "loss": cfg.loss,
        "layout": REGISTRY[cfg.loss].layout,
        "scale": 1.0 / cfg.temperature if cfg.loss in ("mnrl", "cached-mnrl") else None,
        "matryoshka_dims": cfg.matryoshka_dims,
        "gather_across_devices": cfg.gather_across_devices if cfg.loss in ("mnrl", "cached-mnrl") else None,
    }
