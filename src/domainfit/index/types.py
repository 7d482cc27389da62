"""The serving index's data types: documents, queries, hits, the production pointer, and their constants.

`domainfit.index.backend` re-exports every name here next to the
`IndexBackend` protocol; the backends import them from this module.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from domainfit.core.errors import DomainfitError, UsageError

#: Search modes every backend answers.
SearchMode = Literal["dense", "bm25", "hybrid"]
SEARCH_MODES: tuple[str, ...] = ("dense", "bm25", "hybrid")
#: Backends `open_index` knows.
BACKENDS: tuple[str, ...] = ("lancedb", "qdrant")
#: Hybrid fusion: reciprocal-rank fusion (default, no tuning) or the convex weight eval tuned.
Fusion = Literal["rrf", "convex"]
#: The RRF constant: the same as bench's fusion (`domainfit.evaluation.config` ``rrf_k``).
RRF_K = 60
#: How many candidates each side of a hybrid search contributes before fusion (at least ``k``).
HYBRID_DEPTH = 100
#: The production pointer's file name in the index folder.
POINTER = "serving.json"
#: Version of the pointer's format.
POINTER_FORMAT = 1
#: A metadata value an index stores and filters on.
Scalar = str | int | float | bool
#: Columns of every index row; metadata keys may not take these names (nor start with ``vec_``).
RESERVED_FIELDS: tuple[str, ...] = ("id", "title", "text", "content_hash")
#: The fields a hit carries when the query names none.
DEFAULT_FIELDS: tuple[str, ...] = ()


class IndexFailure(DomainfitError):
    """A failure of the index itself (a missing table, version or tag; a damaged pointer)."""


class IndexMissing(UsageError):
    """There is no index (or no production pointer) where one was asked for (exit code 2)."""


def content_hash(title: str, text: str, metadata: Mapping[str, Scalar] | None = None) -> str:
    """Return the hex SHA-256 of what a document's row holds: title, text and metadata (sorted keys)."""
    payload = json.dumps(
        {"title": title, "text": text, "metadata": dict(sorted((metadata or {}).items()))},
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


_VERSION = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def version_name(label: str) -> str:
    """Return a model version name made from ``label``: characters other than letters, digits, ``_`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", label)[:64] or "model"


def vector_column(version: str) -> str:
    """Return the column (LanceDB) or vector name (Qdrant) of a model version: ``vec_<version>``.

    Raises `UsageError` for a version name other than 1-64 letters, digits or ``_`` (see `version_name`),
    or one ending in ``__rescore`` (the suffix of `rescore_column`).
    """
    if not _VERSION.match(version) or version.endswith("__rescore"):
        raise UsageError(f"model version {version!r}: use 1-64 letters, digits or _ (not ending in __rescore)")
    return f"vec_{version}"


def rescore_column(version: str) -> str:
    """Return the column / vector name of a version's rescoring copy: ``vec_<version>__rescore``."""
    return f"{vector_column(version)}__rescore"


@dataclass(frozen=True)
class IndexDocument:
    """One row of the index: id, title, text, scalar metadata and the content hash of all of them.

    ``content_hash`` is filled from the rest when not given (`content_hash`); the
    text a model embeds is `embed_text` (title and text, as bench encodes them).
    """

    id: str
    text: str
    title: str = ""
    metadata: Mapping[str, Scalar] = field(default_factory=dict)
    content_hash: str = ""

    def __post_init__(self) -> None:
        """Fill the content hash when it was not given."""
        if not self.content_hash:
            object.__setattr__(self, "content_hash", content_hash(self.title, self.text, self.metadata))

    def embed_text(self) -> str:
        """Return the text the encoder sees: title and text joined by a newline (as `Document.full_text`)."""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass(frozen=True)
class DocState:
    """What the index holds for one document: its content hash, and whether it has a vector of a given version."""

    content_hash: str
    has_vector: bool


@dataclass(frozen=True)
class SearchQuery:
    """One search.

    ``text`` is what BM25 matches (required for bm25 and hybrid); ``vector`` the
    encoded query (required for dense and hybrid; the caller encodes it with the
    version's model); ``version`` the model version whose vector column is
    searched (None: the only one there is); ``filters`` metadata equality
    conditions (a list value means any of them); ``fields`` the stored fields each
    hit returns (``title``, ``text``, ``content_hash``, metadata keys); ``fusion``
    and ``alpha`` how hybrid fuses (``rrf`` with k = `RRF_K`, or ``convex`` with
    ``alpha`` the dense weight on min-max normalised scores).
    """

    text: str = ""
    vector: Sequence[float] | None = None
    mode: SearchMode = "dense"
    k: int = 10
    version: str | None = None
    filters: Mapping[str, Scalar | Sequence[Scalar]] = field(default_factory=dict)
    fields: tuple[str, ...] = DEFAULT_FIELDS
    fusion: Fusion = "rrf"
    alpha: float | None = None

    def checked(self) -> SearchQuery:
        """Return the query after checking its shape (raises `UsageError` with what is wrong)."""
        if self.mode not in SEARCH_MODES:
            raise UsageError(f"unknown search mode {self.mode!r}; use one of {', '.join(SEARCH_MODES)}")
        if self.k < 1:
            raise UsageError(f"k must be at least 1, got {self.k}")
        if self.mode in ("dense", "hybrid") and self.vector is None:
            raise UsageError(f"a {self.mode} search needs the query vector")
        if self.mode in ("bm25", "hybrid") and not self.text.strip():
            raise UsageError(f"a {self.mode} search needs the query text")
        if self.vector is not None and not all(math.isfinite(float(v)) for v in self.vector):
            raise UsageError("the query vector holds a value that is not a finite number")
        if self.fusion == "convex" and (self.alpha is None or not 0.0 <= self.alpha <= 1.0):
            raise UsageError("convex fusion needs alpha in [0, 1]")
        return self

    def vector_array(self) -> np.ndarray:
        """Return the query vector as a float32 array (raises `UsageError` when there is none)."""
        if self.vector is None:
            raise UsageError("this search has no query vector")
        return np.asarray(self.vector, dtype=np.float32)


@dataclass(frozen=True)
class Hit:
    """One search result: document id, score (higher is better) and the fields the query asked for."""

    id: str
    score: float
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServingPointer:
    """What production reads (``serving.json``): which index, model and defaults a search service uses.

    ``backend`` and ``corpus`` name the store; ``version`` the model version
    (vector column ``vec_<version>``) and ``dimension`` its size; ``model`` the
    model to encode queries with (a sentence-transformers folder or name);
    ``tag`` the tag production reads, ``table_version`` the version it points
    to; ``mode``, ``fusion`` and ``alpha`` the default search (a hybrid that
    won the evaluation is served as one); ``system`` the deployed system's name
    as eval measured it; ``min_score`` the calibrated similarity threshold, if any;
    ``max_seq_length`` and ``query_prompt_name`` how queries are encoded (as eval
    encoded them: `domainfit.retrieval.dense.DenseRetriever` with these settings);
    ``precision`` how the version's vectors are stored: compress's configuration
    name (``full/float32``, ``trunc-384/int8``, ...; `domainfit.index.precision`,
    whose record, int8 ranges included, is kept with the vectors themselves).
    """

    backend: str
    corpus: str
    version: str
    dimension: int
    model: str
    tag: str
    table_version: int
    mode: SearchMode = "dense"
    fusion: Fusion = "rrf"
    alpha: float | None = None
    system: str = ""
    min_score: float | None = None
    created: str = ""
    max_seq_length: int | None = None
    query_prompt_name: str | None = None
    precision: str = "full/float32"
    format: int = POINTER_FORMAT

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form written to ``serving.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServingPointer:
        """Build a pointer from its JSON form (raises ValueError for another format, KeyError for a missing key)."""
        if data.get("format") != POINTER_FORMAT:
            raise ValueError(f"serving pointer format {data.get('format')!r}, expected {POINTER_FORMAT}")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def searched_version(version: str | None, have: Iterable[str]) -> str:
    """Return the model version a search reads: ``version`` when the index has it, else the only one it has.

    `UsageError` when ``version`` is not in the index, or when it is None and the
    index holds none or several (the caller must name one).
    """
    have = list(have)
    if version is not None:
        if version not in have:
            raise UsageError(f"no model version {version!r} in the index (it has: {', '.join(have) or 'none'})")
        return version
    if len(have) != 1:
        raise UsageError(f"name the model version to search (the index has: {', '.join(have) or 'none'})")
    return have[0]
