"""BM25 as sparse vectors, for a store that scores sparse vectors with an IDF modifier (Qdrant).

A document's vector holds, per distinct term, BM25's saturated term frequency
``tf * (k1 + 1) / (tf + k1)`` (length normalisation off, ``b = 0``: the
average length is not known when one row is written); the store multiplies in
the IDF of each query term. A query's vector is 1 per distinct term. Terms are
lower-cased word tokens (Unicode word characters), hashed to 32-bit indices (blake2b):
no vocabulary to keep, and no download (fastembed's BM25 model is fetched at
run time).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

#: BM25's term-frequency saturation.
K1 = 1.2
_WORD = re.compile(r"\w+", re.UNICODE)


def terms(text: str) -> list[str]:
    """Return the lower-cased word tokens of ``text``."""
    return _WORD.findall(text.lower())


def term_index(term: str) -> int:
    """Return the 32-bit index of a term."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def document_vector(text: str) -> tuple[list[int], list[float]]:
    """Return the sparse BM25 vector of a document: (indices, saturated term frequencies), indices sorted."""
    counts: Counter[int] = Counter(term_index(t) for t in terms(text))
    indices = sorted(counts)
    return indices, [counts[i] * (K1 + 1) / (counts[i] + K1) for i in indices]


def query_vector(text: str) -> tuple[list[int], list[float]]:
    """Return the sparse vector of a query: 1 per distinct term, indices sorted."""
    indices = sorted({term_index(t) for t in terms(text)})
    return indices, [1.0] * len(indices)
