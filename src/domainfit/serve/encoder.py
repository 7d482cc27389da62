"""Query-side encoders: what ``/search`` embeds a query with and ``/embed`` answers from.

`Encoder` is the small protocol the application needs (a name, a dimension,
the prompt names, ``encode``); `SentenceTransformerEncoder` implements it over
a loaded sentence-transformers model, preparing texts under the ``[text]``
settings exactly as indexing does, and taking the query route of a model with
separate query and document encoders.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

import numpy as np

from domainfit.retrieval.dense import is_routed
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class Encoder(Protocol):
    """Turns texts into vectors. ``encode`` returns float32 rows, one per text."""

    name: str
    dimension: int
    prompt_names: tuple[str, ...]
    query_prompt_name: str | None

    def encode(self, texts: list[str], *, normalize: bool = True, prompt_name: str | None = None) -> np.ndarray:
        """Encode ``texts`` (a prompt by name, when given) into a (len(texts), dimension) float32 array."""
        ...


class SentenceTransformerEncoder:
    """An `Encoder` over a sentence-transformers model.

    Inputs: the loaded model, the name to report (``/info``), the ``[text]``
    settings texts are prepared under, the batch size and the query prompt
    (default: the model's ``query`` prompt when it has one, as bench and index use it).
    Calls are serialised by a lock: one model, shared by the request threads.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        name: str,
        *,
        text: TextConfig = DEFAULT_TEXT,
        batch_size: int = 32,
        query_prompt_name: str | None = None,
    ) -> None:
        self.model = model
        self.name = name
        self.text = text
        self.batch_size = batch_size
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimension = int(get_dim() or 0)
        self.prompt_names = tuple(sorted(model.prompts or {}))
        default = "query" if "query" in self.prompt_names else None
        self.query_prompt_name: str | None = query_prompt_name or default
        self._task = "query" if is_routed(model) else None
        self._lock = threading.Lock()

    def encode(self, texts: list[str], *, normalize: bool = True, prompt_name: str | None = None) -> np.ndarray:
        """Encode prepared ``texts``; L2-normalised when ``normalize``."""
        prepared = self.text.prepare_all(list(texts))
        with self._lock:
            vectors = self.model.encode(
                prepared,
                batch_size=self.batch_size,
                prompt_name=prompt_name,
                normalize_embeddings=normalize,
                task=self._task,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32).reshape(len(prepared), self.dimension)
