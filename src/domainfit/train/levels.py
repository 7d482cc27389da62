"""Levels of effort as train modes: what each changes, and freezing all but the top transformer layers.

The levels, cheapest first (``[train] level``):

- ``prompts`` (level 1): query/document prompts chosen on dev, no weight change
  (`domainfit.train.prompts`);
- ``adapter``: a map on query embeddings only, documents and stored vectors untouched
  (`domainfit.train.adapter`);
- ``static`` (level 4): a static-embedding model of one's own, trained on the pairs
  (`domainfit.train.static`);
- ``top-layers`` (level 2): only the top N transformer layers (and what follows them) trained;
- ``full`` (level 3): every weight trained.

Inputs here are loaded sentence-transformers models; nothing knows the workspace.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

    from domainfit.train.config import TrainConfig

#: The level number of each train mode, as the issue and the literature count them.
LEVEL_NUMBER = {"prompts": "1", "adapter": "1q", "static": "4", "top-layers": "2", "full": "3"}
#: Whether a level changes the document vectors (so the index must be re-embedded).
CHANGES_DOCUMENTS = {"prompts": False, "adapter": False, "static": True, "top-layers": True, "full": True}


@dataclass
class Frozen:
    """What `freeze_below_top` left trainable."""

    layers: int
    trained_layers: int
    parameters: int
    trainable_parameters: int

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form recorded in the train result."""
        return asdict(self)


def transformer_layers(model: SentenceTransformer) -> torch.nn.ModuleList:
    """Return the stack of transformer blocks of a sentence-transformers model (its longest ModuleList).

    Raises ValueError for a model without one (a static-embedding model).
    """
    import torch

    stacks = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 1]
    if not stacks:
        raise ValueError("the model has no stack of transformer layers to train the top of")
    return max(stacks, key=len)


def layer_count(model: SentenceTransformer) -> int:
    """Return how many transformer layers the model has."""
    return len(transformer_layers(model))


def freeze_below_top(model: SentenceTransformer, n: int) -> Frozen:
    """Freeze every weight of ``model`` except its top ``n`` transformer layers and the modules after the encoder.

    The embeddings and lower layers get ``requires_grad = False``, so the
    optimiser skips them and backpropagation stops at the lowest trained layer.
    Pooling/normalisation have no weights; a projection (``Dense``) after the
    encoder stays trainable. Inputs: the model (changed in place), ``1 <= n <= layers``.
    Output: a `Frozen` record. Raises ValueError when ``n`` is out of range.
    """
    layers = transformer_layers(model)
    if not 1 <= n <= len(layers):
        raise ValueError(f"top_layers must be between 1 and {len(layers)}, got {n}")
    for param in model.parameters():
        param.requires_grad = False
    for layer in list(layers)[-n:]:
        for param in layer.parameters():
            param.requires_grad = True
    for module in list(model.children())[1:]:  # what follows the transformer (Dense projections)
        for param in module.parameters():
            param.requires_grad = True
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Frozen(layers=len(layers), trained_layers=n, parameters=total, trainable_parameters=trainable)


def model_layers(name: str) -> int | None:
    """Return the ``num_hidden_layers`` of a model folder's ``config.json`` without loading weights (None: unknown)."""
    import json

    from domainfit.core.models import resolve_model

    try:
        config = resolve_model(name).path / "config.json"
        return int(json.loads(config.read_text(encoding="utf-8"))["num_hidden_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def level_config(cfg: TrainConfig) -> TrainConfig:
    """Return the settings the trainer runs a level with (a static model trains its table at its own rate)."""
    if cfg.level == "static":
        return cfg.model_copy(update={"learning_rate": cfg.static_learning_rate})
    return cfg


def level_model(cfg: TrainConfig) -> tuple[SentenceTransformer, dict[str, Any] | None]:
    """Return the model the trainer trains for ``cfg.level`` and what the level did to it.

    ``full``: the base model; ``top-layers``: the base model with all but the top
    ``top_layers`` layers frozen; ``static``: a new static-embedding model
    (`domainfit.train.static`). The prompt and adapter levels do not use the trainer.
    """
    from domainfit.train.trainer import load_base_model

    if cfg.level == "static":
        from domainfit.train.static import static_model

        model = static_model(cfg.base_model, cfg.static_source, cfg.static_dims)
        model.prompts = {"query": cfg.query_prompt, "document": cfg.document_prompt}
        dim = model.get_sentence_embedding_dimension()
        source = f"distilled from {cfg.base_model}" if cfg.static_source == "distill" else "tokenlearn-static-model"
        return model, {"static_source": cfg.static_source, "dims": dim, "start": source}
    model = load_base_model(cfg)
    if cfg.level == "top-layers":
        return model, freeze_below_top(model, cfg.top_layers).to_json()
    return model, None
