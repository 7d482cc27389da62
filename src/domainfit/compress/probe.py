"""A short probe of embedding throughput on this machine (documents per second, no cache)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


@dataclass
class Throughput:
    """Measured encoding speed: documents, seconds and their ratio, with the batch size used."""

    documents: int
    seconds: float
    docs_per_second: float
    batch_size: int

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)


def measure_throughput(model: SentenceTransformer, texts: list[str], batch_size: int = 32) -> Throughput:
    """Encode ``texts`` once (after a small untimed warm-up) and return documents per second.

    Inputs: a loaded model, the probe texts (a sample of the corpus, so their
    lengths are representative), the batch size. Nothing is cached.
    """
    if not texts:
        raise ValueError("the throughput probe needs at least one text")
    model.encode(texts[: min(4, len(texts))], batch_size=batch_size, show_progress_bar=False)
    start = time.perf_counter()
    model.encode(texts, batch_size=batch_size, show_progress_bar=False, normalize_embeddings=True)
    seconds = time.perf_counter() - start
    return Throughput(len(texts), round(seconds, 4), round(len(texts) / max(seconds, 1e-9), 3), batch_size)
