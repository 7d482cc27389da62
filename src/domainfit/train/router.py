"""Separate query and document encoders (``train.separate_encoders``) with sentence-transformers' ``Router``.

The base model's modules are copied into a ``query`` route and a ``document``
route (both start as the base model, so training begins where a shared encoder
would); the trainer sends each dataset column to its route through
``router_mapping``. The saved folder is a plain sentence-transformers model:
``SentenceTransformer(path).encode_query`` / ``encode_document`` pick the route.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from domainfit.retrieval.dense import is_routed

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: Dataset columns that hold queries; every other text column is a document.
QUERY_COLUMNS = frozenset({"anchor", "query", "sentence1"})


def separate_encoders(base: SentenceTransformer) -> SentenceTransformer:
    """Return a model with a query route and a document route, each a copy of all of ``base``'s modules.

    Input: a loaded bi-encoder. Output: a new ``SentenceTransformer`` whose two
    routes start identical to ``base`` (prompts, max sequence length and
    similarity function are carried over). A model that already routes is returned unchanged.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Router

    if is_routed(base):
        return base
    modules: list[Any] = list(base.children())
    router = Router.for_query_document(
        query_modules=copy.deepcopy(modules), document_modules=copy.deepcopy(modules), default_route="document"
    )
    model = SentenceTransformer(modules=[router], device=str(base.device))
    model.prompts = dict(base.prompts or {})
    model.default_prompt_name = base.default_prompt_name
    if base.max_seq_length is not None:
        model.max_seq_length = base.max_seq_length
    model.similarity_fn_name = base.similarity_fn_name
    return model


def router_mapping(columns: Iterable[str]) -> dict[str, str]:
    """Map training columns to routes: query columns to ``query``, other text columns to ``document``."""
    return {c: ("query" if c in QUERY_COLUMNS else "document") for c in columns if c != "label"}
