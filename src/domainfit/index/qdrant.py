"""The Qdrant backend (scale-out): one collection per corpus, named vectors per model version, aliases for tags.

Through ``qdrant-client``: a folder gives its local mode (what the tests use;
pure Python, exact search, one process at a time), and the same code talks to
a Qdrant server or cluster by URL (`QdrantBackend.connect`). Per corpus one
collection holds a point per document (id: a UUID made from the document id;
payload: ``id``, ``title``, ``text``, ``content_hash``, metadata), a named dense
vector per model version (``vec_<version>``, dot product on the normalised
vectors, so scores equal the LanceDB backend's) and a sparse ``bm25`` vector
with the IDF modifier (`domainfit.index.sparse`). Hybrid is Qdrant's RRF set to
bench's k = `RRF_K` (Qdrant's default is 2, and it counts ranks from 0, so the
``k`` it is given is `QDRANT_RRF_K`), or bench's convex fusion.

A version stored at a compressed precision (`domainfit.index.precision`) keeps
compress's own codes as stored vectors rather than Qdrant's quantization:
Qdrant's scalar and binary quantization pick their own ranges and are not
applied in local mode, so they would not search what compress measured. int8
codes (code + 128) and binary bits (one a dimension) are ``uint8`` vectors
searched by dot product with a transformed query, whose scores are turned back
into compress's; a rescored binary version also stores its rescoring copy, and
its ``k * oversample`` nearest bit vectors are ranked by that copy. The
precision of each version is recorded in the collection metadata, as are the
metadata fields' types (a filter value of another type is refused, as LanceDB
refuses it).

Qdrant keeps no versions, so this backend keeps them the blue-green way: the
collection's metadata counts writes (the version); a tag copies the collection
into a frozen ``<corpus>__v<version>`` and points the alias ``<corpus>__<tag>``
at it; ``restore`` copies a tagged collection back into the live one;
``checkout`` reads the tagged collection.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from domainfit.core.errors import UsageError
from domainfit.index.fusion import fuse, overfetch, top
from domainfit.index.lance import table_name
from domainfit.index.precision import StoredPrecision, new_version_precision
from domainfit.index.qdrant_ops import copy_collection, dense_query, metadata_filter, scroll
from domainfit.index.schema import merge_kind, scalar_kind
from domainfit.index.sparse import document_vector, query_vector
from domainfit.index.types import (
    HYBRID_DEPTH,
    RRF_K,
    DocState,
    Hit,
    IndexDocument,
    IndexMissing,
    SearchQuery,
    rescore_column,
    searched_version,
    vector_column,
)

#: The k that gives bench's fusion in Qdrant: Qdrant scores the first hit 1 / k (ranks counted from 0),
#: bench (`domainfit.retrieval.hybrid.rrf`, Cormack et al.) 1 / (k + 1); Qdrant k = 61 is bench's k = 60.
QDRANT_RRF_K = RRF_K + 1
#: The sparse vector's name.
SPARSE = "bm25"
_NAMESPACE = uuid.UUID("5b0f8a0e-1f6e-4d8e-9a51-3c4cf0e0d7a1")
_PAGE = 512


def point_id(doc_id: str) -> str:
    """Return the Qdrant point id of a document id (a UUID5: Qdrant ids are integers or UUIDs)."""
    return str(uuid.uuid5(_NAMESPACE, doc_id))


class QdrantBackend:
    """`IndexBackend` over one Qdrant collection (see the module docstring).

    Inputs: the local-mode folder (``":memory:"``: not persisted), or ``url`` of a server; the corpus name,
    ``read_only`` (True: the collection must exist; nothing is written).
    """

    def __init__(
        self, folder: Path | str | None, corpus: str, *, read_only: bool = False, url: str | None = None
    ) -> None:
        from qdrant_client import QdrantClient

        self.corpus, self.name, self.read_only = corpus, table_name(corpus), read_only
        if url is None and folder is None:
            raise UsageError("give the Qdrant backend a folder (local mode) or a server URL")
        if url is None and read_only and str(folder) != ":memory:" and not Path(str(folder)).is_dir():
            raise IndexMissing(f"no Qdrant index at {folder}")
        if url is not None:
            self.client = QdrantClient(url=url)
        elif str(folder) == ":memory:":  # local mode without persistence (benchmarks, throwaway indexes)
            self.client = QdrantClient(location=":memory:")
        else:
            self.client = QdrantClient(path=str(folder))
        self._reading = self.name
        if read_only and not self.client.collection_exists(self.name):
            self.client.close()
            raise IndexMissing(f"no collection {self.name!r} in the Qdrant index at {folder or url}")

    @classmethod
    def connect(cls, url: str, corpus: str, *, read_only: bool = False) -> QdrantBackend:
        """Open the collection of ``corpus`` on a Qdrant server or cluster."""
        return cls(None, corpus, read_only=read_only, url=url)

    # -- collection state ------------------------------------------------------------------------

    def _exists(self) -> bool:
        """Return True when the live collection exists."""
        return bool(self.client.collection_exists(self.name))

    def _meta(self, collection: str | None = None) -> dict[str, Any]:
        """Return a collection's metadata (the version counter and the tags)."""
        info = self.client.get_collection(collection or self.name)
        return dict(info.config.metadata or {})

    def _bump(self) -> None:
        """Count one write (the collection's version)."""
        meta = self._meta()
        self.client.update_collection(
            self.name, metadata={"domainfit_version": int(meta.get("domainfit_version", 0)) + 1}
        )

    def _ensure(self) -> None:
        """Create the live collection (no dense vectors yet, the sparse BM25 vector with IDF)."""
        if self._exists():
            return
        from qdrant_client import models

        self.client.create_collection(
            self.name,
            vectors_config={},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={"domainfit_version": 1, "domainfit_tags": {}, "domainfit_fields": {}},
        )

    def _writable(self) -> None:
        """Refuse to write through a read-only handle or a checked-out tag."""
        if self.read_only or self._reading != self.name:
            raise UsageError("this index was opened for reading (or a tag is checked out); it cannot be written")

    def _precisions(self) -> dict[str, StoredPrecision]:
        """Return every model version's precision (recorded in the collection metadata; none: float32)."""
        if not self.client.collection_exists(self._reading):
            return {}
        info = self.client.get_collection(self._reading).config
        vectors = info.params.vectors or {}
        if not isinstance(vectors, Mapping):
            return {}
        records = dict((info.metadata or {}).get("domainfit_precision") or {})
        found: dict[str, StoredPrecision] = {}
        for name, params in vectors.items():
            if not name.startswith("vec_") or name.endswith("__rescore"):
                continue
            version = name[4:]
            record = records.get(version)
            found[version] = StoredPrecision.from_json(record) if record else StoredPrecision.full(int(params.size))
        return found

    def versions(self) -> dict[str, int]:
        """Return the model versions present: version → the dimension of the vectors it takes (the model's)."""
        return {version: p.full_dim for version, p in self._precisions().items()}

    def precision(self, version: str) -> StoredPrecision:
        """Return how ``version``'s vectors are stored (`UsageError` for a version the index does not hold)."""
        found = self._precisions()
        if version not in found:
            raise UsageError(f"no model version {version!r} in the index (it has: {', '.join(found) or 'none'})")
        return found[version]

    def add_version(self, version: str, dimension: int, precision: StoredPrecision | None = None) -> None:
        """Add the named vector(s) of ``version`` at ``precision`` (default: float32, dot product).

        int8 codes and binary bits are stored as Qdrant ``uint8`` vectors (code + 128; one bit a
        dimension) searched by dot product with a transformed query (`_dense_query`); a binary
        version with rescoring also gets its rescoring copy (``vec_<version>__rescore``).
        Raises `UsageError` when the version exists with another dimension or precision.
        """
        self._writable()
        column = vector_column(version)
        wanted = new_version_precision(self._precisions(), version, dimension, precision)
        if wanted is None:
            return
        from qdrant_client import models

        self._ensure()
        kinds = {"float32": None, "float16": models.Datatype.FLOAT16, "int8": models.Datatype.UINT8,
                 "binary": models.Datatype.UINT8}  # fmt: skip
        names = [(column, wanted.store)] + ([(rescore_column(version), wanted.rescore)] if wanted.rescore else [])
        for name, kind in names:
            self.client.create_vector_name(
                self.name,
                name,
                models.DenseVectorNameConfig(
                    dense=models.DenseVectorConfig(size=wanted.dim, distance=models.Distance.DOT, datatype=kinds[kind])
                ),
            )
        if not wanted.is_full:
            records = {**dict(self._meta().get("domainfit_precision") or {}), version: wanted.to_json()}
            self.client.update_collection(self.name, metadata={"domainfit_precision": records})
        self._bump()

    def _stored(self, version: str, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """Return full-width float vectors of ``version`` as Qdrant stores them: name → (n, dim) rows."""
        precision = self.precision(version)
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != precision.full_dim:
            raise UsageError(f"vectors of shape {array.shape} do not have dimension {precision.full_dim}")
        codes = precision.codes(array)
        if precision.store == "int8":
            codes = codes.astype(np.int16) + 128  # uint8: code + 128
        elif precision.store == "binary":
            codes = np.unpackbits(codes, axis=1)[:, : precision.dim]
        out = {vector_column(version): codes.astype(np.float32)}
        copy = precision.rescore_codes(array)
        if copy is not None:
            out[rescore_column(version)] = (
                copy.astype(np.int16) + 128 if precision.rescore == "int8" else copy
            ).astype(np.float32)
        return out

    def _record_fields(self, docs: Sequence[IndexDocument]) -> None:
        """Record the type of each metadata field (for filter checks), refusing a type the field does not hold."""
        fields = {str(k): str(v) for k, v in dict(self._meta().get("domainfit_fields") or {}).items()}
        changed = False
        for doc in docs:
            for key, value in doc.metadata.items():
                kind = scalar_kind(value)
                if kind is None:
                    continue
                merged = merge_kind(fields.get(key), kind)
                if merged is None:
                    raise UsageError(
                        f"document {doc.id!r}: metadata {key!r} is {kind}, the index stores it as {fields[key]}"
                    )
                if fields.get(key) != merged:
                    fields[key], changed = merged, True
        if changed:
            self.client.update_collection(self.name, metadata={"domainfit_fields": fields})

    # -- writes ----------------------------------------------------------------------------------

    def upsert(self, docs: Sequence[IndexDocument], vectors: Mapping[str, np.ndarray] | None = None) -> int:
        """Insert or replace whole points keyed on the document id (vectors of versions not given are dropped)."""
        self._writable()
        if not docs:
            return 0
        from qdrant_client import models

        vectors = dict(vectors or {})
        for version, array in vectors.items():
            self.add_version(version, int(array.shape[1]))
        self._ensure()
        self._record_fields(docs)
        stored: dict[str, np.ndarray] = {}
        for version, array in vectors.items():
            stored.update(self._stored(version, array))
        for start in range(0, len(docs), _PAGE):
            points = []
            for offset, doc in enumerate(docs[start : start + _PAGE]):
                indices, values = document_vector(doc.embed_text())
                vector: dict[str, Any] = {SPARSE: models.SparseVector(indices=indices, values=values)}
                for name, rows in stored.items():
                    vector[name] = rows[start + offset].tolist()
                payload = {"id": doc.id, "title": doc.title, "text": doc.text, "content_hash": doc.content_hash}
                points.append(
                    models.PointStruct(id=point_id(doc.id), vector=vector, payload={**payload, **doc.metadata})
                )
            self.client.upsert(self.name, points=points, wait=True)
        self._bump()
        return len(docs)

    def set_vectors(self, version: str, ids: Sequence[str], hashes: Sequence[str], vectors: np.ndarray) -> int:
        """Set ``version``'s vector of the points whose id and content hash match; return how many were set."""
        self._writable()
        if not len(ids):
            return 0
        if version not in self.versions():
            raise UsageError(f"no model version {version!r} in the index; add it first")
        stored = self._stored(version, vectors)
        from qdrant_client import models

        found = self.client.retrieve(self.name, ids=[point_id(i) for i in ids], with_payload=["content_hash"])
        current = {str(p.id): (p.payload or {}).get("content_hash") for p in found}
        updates = [
            models.PointVectors(id=point_id(i), vector={name: rows[row].tolist() for name, rows in stored.items()})
            for row, (i, digest) in enumerate(zip(ids, hashes, strict=True))
            if current.get(point_id(i)) == digest
        ]
        if updates:
            self.client.update_vectors(self.name, points=updates, wait=True)
            self._bump()
        return len(updates)

    def delete(self, ids: Sequence[str]) -> int:
        """Delete the points with these ids; return how many were deleted."""
        self._writable()
        if not ids or not self._exists():
            return 0
        from qdrant_client import models

        present = self.client.retrieve(self.name, ids=[point_id(i) for i in ids], with_payload=False)
        if present:
            self.client.delete(
                self.name, points_selector=models.PointIdsList(points=[p.id for p in present]), wait=True
            )
            self._bump()
        return len(present)

    def optimize(self) -> None:
        """Nothing to do: the sparse vectors are scored as written."""
        self._writable()

    # -- reads -----------------------------------------------------------------------------------

    def states(self, version: str | None = None) -> dict[str, DocState]:
        """Return every point's content hash and whether it has ``version``'s vector."""
        if not self.client.collection_exists(self._reading):
            return {}
        column = vector_column(version) if version is not None and version in self.versions() else None
        out: dict[str, DocState] = {}
        for p in scroll(
            self.client, self._reading, with_vectors=[column] if column else False, with_payload=["id", "content_hash"]
        ):
            payload = p.payload or {}
            has = bool(column) and isinstance(p.vector, Mapping) and p.vector.get(column) is not None
            out[str(payload["id"])] = DocState(str(payload["content_hash"]), has)
        return out

    def count(self) -> int:
        """Return the number of documents."""
        if not self.client.collection_exists(self._reading):
            return 0
        return int(self.client.count(self._reading, exact=True).count)

    def _version(self, query: SearchQuery) -> str:
        """Return the model version a query searches (the only one, when it names none)."""
        return searched_version(query.version, self.versions())

    def _hits(self, points: Sequence[Any], fields: Sequence[str]) -> list[Hit]:
        """Turn scored points into hits carrying the asked fields."""
        out = []
        for p in points:
            payload = p.payload or {}
            out.append(Hit(str(payload["id"]), float(p.score), {f: payload.get(f) for f in fields if f != "id"}))
        return out

    def _rescored(self, query: SearchQuery, k: int, flt: Any) -> list[Hit]:
        """Binary search rescored: the ``k * oversample`` nearest bits (ties by id) ranked by the rescoring copy."""
        version = self._version(query)
        precision = self.precision(version)
        reduced = precision.reduce(query.vector_array()[None, :])[0]
        signs = np.where(reduced > 0, 1.0, -1.0)
        copy = rescore_column(version)
        found = self.client.query_points(
            self._reading,
            query=signs.tolist(),
            using=vector_column(version),
            limit=overfetch(k * precision.oversample),
            query_filter=flt,
            with_payload=["id", *query.fields],
            with_vectors=[copy],
        ).points
        nearest = sorted(found, key=lambda p: (-p.score, str((p.payload or {}).get("id"))))
        nearest = nearest[: k * precision.oversample]
        if not nearest:
            return []
        stored = np.asarray([p.vector[copy] for p in nearest if isinstance(p.vector, Mapping)], dtype=np.float32)
        if precision.rescore == "float32":
            scores = stored @ reduced
        else:
            scores = precision.int8_scores(reduced, (stored - 128).astype(np.int8))
        hits = self._hits(nearest, query.fields)
        order = np.argsort(-scores, kind="stable")
        return top([Hit(hits[i].id, float(scores[i]), hits[i].fields) for i in order[:k]], k)

    def _query(self, query: SearchQuery, k: int, mode: str) -> list[Hit]:
        """Run one dense or BM25 search on the collection read."""
        from qdrant_client import models

        flt = metadata_filter(query.filters, self._meta(self._reading).get("domainfit_fields"))
        if mode == "dense" and self.precision(self._version(query)).rescore is not None:
            return self._rescored(query, k, flt)
        if mode == "dense":
            version = self._version(query)
            args, scale, offset = dense_query(self.precision(version), version, query.vector_array(), k, flt)
            found = self.client.query_points(
                self._reading, **args, limit=overfetch(k), query_filter=flt, with_payload=["id", *query.fields]
            )
            hits = [Hit(h.id, scale * h.score + offset, h.fields) for h in self._hits(found.points, query.fields)]
            return top(hits, k)
        indices, values = query_vector(query.text)
        if not indices:
            return []
        found = self.client.query_points(
            self._reading,
            query=models.SparseVector(indices=indices, values=values),
            using=SPARSE,
            limit=overfetch(k),
            query_filter=flt,
            with_payload=["id", *query.fields],
        )
        return top(self._hits(found.points, query.fields), k)

    def search(self, query: SearchQuery) -> list[Hit]:
        """Return the top ``query.k`` hits, best first (hybrid: Qdrant's RRF with k = 60, or bench's convex)."""
        query = query.checked()
        if not self.client.collection_exists(self._reading):
            return []
        if query.mode in ("dense", "bm25"):
            return self._query(query, query.k, query.mode)
        depth = max(HYBRID_DEPTH, query.k)
        if query.fusion == "convex":
            dense, lexical = self._query(query, depth, "dense"), self._query(query, depth, "bm25")
            return fuse(dense, lexical, query.k, fusion="convex", alpha=query.alpha)
        from qdrant_client import models

        flt = metadata_filter(query.filters, self._meta(self._reading).get("domainfit_fields"))
        indices, values = query_vector(query.text)
        searched, _, _ = dense_query(self.precision(v := self._version(query)), v, query.vector_array(), depth, flt)
        found = self.client.query_points(
            self._reading,
            prefetch=[
                models.Prefetch(**searched, limit=depth, filter=flt),
                models.Prefetch(
                    query=models.SparseVector(indices=indices, values=values), using=SPARSE, limit=depth, filter=flt
                ),
            ],
            query=models.RrfQuery(rrf=models.Rrf(k=QDRANT_RRF_K)),
            limit=overfetch(query.k),
            query_filter=flt,
            with_payload=["id", *query.fields],
        )
        return top(self._hits(found.points, query.fields), query.k)

    # -- versions and tags -----------------------------------------------------------------------

    def table_version(self) -> int:
        """Return the collection's write count (its version)."""
        if not self._exists():
            raise IndexMissing(f"the index of {self.corpus!r} holds no documents yet")
        return int(self._meta().get("domainfit_version", 0))

    def _tags(self) -> dict[str, int]:
        """Return the tags recorded in the live collection's metadata."""
        return {str(k): int(v) for k, v in dict(self._meta().get("domainfit_tags") or {}).items()}

    def create_tag(self, tag: str) -> int:
        """Freeze the current version as ``<corpus>__v<version>`` and point the tag (and its alias) at it."""
        self._writable()
        from qdrant_client import models

        version = self.table_version()
        frozen = f"{self.name}__v{version}"
        if not self.client.collection_exists(frozen):
            copy_collection(self.client, self.name, frozen)
        alias = f"{self.name}__{tag}"
        operations: list[Any] = []
        if any(a.alias_name == alias for a in self.client.get_aliases().aliases):
            operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        operations.append(
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=frozen, alias_name=alias))
        )
        self.client.update_collection_aliases(change_aliases_operations=operations)
        tags = {**self._tags(), tag: version}
        self.client.update_collection(self.name, metadata={"domainfit_tags": tags})
        return version

    def tags(self) -> dict[str, int]:
        """Return the tags: name → version."""
        return self._tags() if self._exists() else {}

    def restore(self, tag: str) -> int:
        """Copy the tagged collection back into the live one, as a new version; return it."""
        self._writable()
        tags = self._tags()
        if tag not in tags:
            raise UsageError(f"no tag {tag!r} in the index (it has: {', '.join(tags) or 'none'})")
        version = self.table_version()
        copy_collection(self.client, f"{self.name}__v{tags[tag]}", self.name)
        self.client.update_collection(self.name, metadata={"domainfit_version": version + 1, "domainfit_tags": tags})
        return version + 1

    def checkout(self, tag: str | None) -> None:
        """Read the tagged (frozen) collection, or with None the live one again."""
        if tag is None:
            self._reading = self.name
            return
        tags = self._tags()
        if tag not in tags:
            raise IndexMissing(f"no tag {tag!r} in the index of {self.corpus!r}")
        self._reading = f"{self.name}__v{tags[tag]}"

    def close(self) -> None:
        """Close the client (releases local mode's folder lock)."""
        self.client.close()
