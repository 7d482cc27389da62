"""The serving index's protocol: documents, queries, hits, the `IndexBackend` every store implements.

An index holds one corpus: one row per document (id, title, text, scalar
metadata, the content hash of what was embedded) and one vector column per
model version (``vec_<version>``), so an old and a new model live side by
side. A backend answers dense, BM25 and hybrid (RRF, k = `RRF_K`, the
constant bench fuses with) searches, optionally filtered on metadata, and
keeps named tags of its versions that it can restore.

What production reads is a pointer, ``serving.json`` in the index folder
(`ServingPointer`): which backend, corpus, model version and tag, the model
to encode queries with, and the default mode. It is replaced atomically
(`write_pointer`), so a reader sees the old pointer or the new one, never half
of one. `open_index` opens the index that pointer names, checked out at its
tag, for reading.

Layout of an index folder (``<workspace>/index/``)::

    serving.json     the production pointer
    lancedb/         the LanceDB database (default backend), one table per corpus
    qdrant/          the Qdrant local-mode store (when that backend is chosen)

The data types live in `domainfit.index.types`; every name is re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from domainfit.core.errors import UsageError
from domainfit.core.files import atomic_write_json
from domainfit.index.precision import StoredPrecision
from domainfit.index.types import (
    BACKENDS,
    DEFAULT_FIELDS,
    HYBRID_DEPTH,
    POINTER,
    POINTER_FORMAT,
    RESERVED_FIELDS,
    RRF_K,
    SEARCH_MODES,
    DocState,
    Fusion,
    Hit,
    IndexDocument,
    IndexFailure,
    IndexMissing,
    Scalar,
    SearchMode,
    SearchQuery,
    ServingPointer,
    content_hash,
    vector_column,
    version_name,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_FIELDS",
    "HYBRID_DEPTH",
    "POINTER",
    "POINTER_FORMAT",
    "RESERVED_FIELDS",
    "RRF_K",
    "SEARCH_MODES",
    "DocState",
    "Fusion",
    "Hit",
    "IndexBackend",
    "IndexDocument",
    "IndexFailure",
    "IndexMissing",
    "Scalar",
    "SearchMode",
    "SearchQuery",
    "ServingPointer",
    "content_hash",
    "open_backend",
    "open_index",
    "read_pointer",
    "vector_column",
    "version_name",
    "write_pointer",
]


@runtime_checkable
class IndexBackend(Protocol):
    """A store of one corpus's documents and vectors that searches them.

    Writes (``add_version``, ``upsert``, ``set_vectors``, ``delete``, ``optimize``,
    ``create_tag``, ``restore``) each commit a new version of the store; a
    reader opened on a tag (``checkout``) never sees later writes and refuses to
    write. Every backend gives the same ids for the same exact (flat) search on
    the same vectors.
    """

    def versions(self) -> dict[str, int]:
        """Return the model versions present: version → vector dimension."""
        ...

    def add_version(self, version: str, dimension: int, precision: StoredPrecision | None = None) -> None:
        """Add an empty vector column for ``version`` (no-op when it exists with that dimension and precision).

        ``precision``: how its vectors are stored (`domainfit.index.precision`; None: float32).
        Every vector written or searched afterwards is full-width (``dimension``); the store reduces and
        quantises it.
        """
        ...

    def precision(self, version: str) -> StoredPrecision:
        """Return how ``version``'s vectors are stored (`UsageError` when the index does not hold it)."""
        ...

    def upsert(self, docs: Sequence[IndexDocument], vectors: Mapping[str, np.ndarray] | None = None) -> int:
        """Insert or replace whole rows keyed on id; return how many were written.

        ``vectors``: per version, a ``(len(docs), dim)`` array in the order of
        ``docs``. A replaced row keeps no vector of a version not given (its
        content may have changed, so that vector is stale).
        """
        ...

    def set_vectors(self, version: str, ids: Sequence[str], hashes: Sequence[str], vectors: np.ndarray) -> int:
        """Set ``version``'s vector of the rows whose id and content hash match; return how many were set.

        A row whose content changed since it was embedded (another hash) is left
        without the vector, so a stale vector is never stored.
        """
        ...

    def delete(self, ids: Sequence[str]) -> int:
        """Delete the rows with these ids; return how many were deleted."""
        ...

    def states(self, version: str | None = None) -> dict[str, DocState]:
        """Return every row's content hash and whether it has ``version``'s vector (False when None)."""
        ...

    def count(self) -> int:
        """Return the number of documents."""
        ...

    def search(self, query: SearchQuery) -> list[Hit]:
        """Return the top ``query.k`` hits, best first, equal scores by id (exact search over the version's vectors)."""
        ...

    def optimize(self) -> None:
        """Bring the full-text index up to date with every row and compact (a new version; data unchanged)."""
        ...

    def table_version(self) -> int:
        """Return the store's current version number (what a tag points to)."""
        ...

    def create_tag(self, tag: str) -> int:
        """Tag the current version as ``tag`` (replacing an earlier tag of that name); return the version."""
        ...

    def tags(self) -> dict[str, int]:
        """Return the tags: name → version."""
        ...

    def restore(self, tag: str) -> int:
        """Make the tagged version the current one (a new version with its data); return the new version."""
        ...

    def checkout(self, tag: str | None) -> None:
        """Read the tagged version (read-only) or, with None, the latest again."""
        ...

    def close(self) -> None:
        """Release the store (files, locks); the backend cannot be used afterwards."""
        ...


def read_pointer(folder: Path | str) -> ServingPointer:
    """Return the production pointer of the index folder (raises `IndexMissing` when it is missing or damaged)."""
    path = Path(folder) / POINTER
    try:
        return ServingPointer.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise IndexMissing(f"no index at {folder}: {POINTER} is missing (run `domainfit index` first)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexMissing(f"{path}: cannot read the serving pointer ({exc})") from None


def write_pointer(folder: Path | str, pointer: ServingPointer) -> Path:
    """Write the production pointer atomically (a temporary file renamed over ``serving.json``); return its path."""
    path = Path(folder) / POINTER
    atomic_write_json(path, pointer.to_json())
    return path


def open_backend(folder: Path | str, corpus: str, *, backend: str = "lancedb", read_only: bool = False) -> IndexBackend:
    """Open (creating when ``read_only`` is False) the store of ``corpus`` in the index folder.

    Inputs: the index folder, the corpus (table / collection) name, the
    backend name (`BACKENDS`). Raises `UsageError` for an unknown backend,
    `IndexMissing` when reading a store that is not there.
    """
    root = Path(folder)
    if backend == "lancedb":
        from domainfit.index.lance import LanceBackend

        return LanceBackend(root / "lancedb", corpus, read_only=read_only)
    if backend == "qdrant":
        try:
            from domainfit.index.qdrant import QdrantBackend
        except ImportError as exc:
            need = f"the qdrant backend needs qdrant-client ({exc}): pip install 'domainfit[qdrant]'"
            raise UsageError(need) from None

        return QdrantBackend(root / "qdrant", corpus, read_only=read_only)
    raise UsageError(f"unknown index backend {backend!r}; use one of {', '.join(BACKENDS)}")


def open_index(
    folder: Path | str, *, backend: str | None = None, tag: str | None = None
) -> tuple[IndexBackend, ServingPointer]:
    """Open the index production reads, for reading; return it with its pointer.

    Inputs: the index folder (``<workspace>/index``); ``backend`` and ``tag``
    override the pointer's (None: the pointer's). The store is checked out at
    the tag, so writes made after it (a re-index in progress) are not seen
    until the pointer moves; a reader re-opens when `read_pointer` changes.
    Raises `IndexMissing` when there is no pointer or no store.
    """
    pointer = read_pointer(folder)
    store = open_backend(folder, pointer.corpus, backend=backend or pointer.backend, read_only=True)
    store.checkout(tag or pointer.tag)
    return store, pointer
