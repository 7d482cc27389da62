"""Qdrant client operations the backend builds on: paging, copying a collection, filters, compressed queries.

Inputs are a `qdrant_client.QdrantClient` (local mode or a server) and
collection names; nothing here knows domainfit's versions or tags.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from domainfit.core.errors import UsageError
from domainfit.index.precision import StoredPrecision
from domainfit.index.schema import BASE_COLUMNS, check_filter_value
from domainfit.index.types import Scalar, rescore_column, vector_column

#: Points per page when scrolling or copying a collection.
PAGE = 512


def scroll(client: Any, collection: str, with_vectors: Any = False, with_payload: Any = True) -> Iterator[Any]:
    """Yield every point of a collection."""
    offset = None
    while True:
        points, offset = client.scroll(
            collection, limit=PAGE, offset=offset, with_payload=with_payload, with_vectors=with_vectors
        )
        yield from points
        if offset is None:
            return


def copy_collection(client: Any, source: str, target: str) -> None:
    """Replace ``target`` with a copy of ``source``: its vector configs, metadata and every point."""
    from qdrant_client import models

    info = client.get_collection(source).config
    if client.collection_exists(target):
        client.delete_collection(target)
    client.create_collection(
        target,
        vectors_config=info.params.vectors,
        sparse_vectors_config=info.params.sparse_vectors,
        metadata=dict(info.metadata or {}),
    )
    batch: list[Any] = []
    for p in scroll(client, source, with_vectors=True, with_payload=True):
        batch.append(models.PointStruct(id=p.id, vector=p.vector, payload=p.payload))
        if len(batch) >= PAGE:
            client.upsert(target, points=batch, wait=True)
            batch = []
    if batch:
        client.upsert(target, points=batch, wait=True)


def metadata_filter(filters: Mapping[str, Scalar | Sequence[Scalar]], recorded: Mapping[str, Any] | None) -> Any:
    """Return the Qdrant filter of metadata equality conditions (None for none).

    ``recorded``: the collection's metadata fields and their types (None for a
    collection that predates the record: any non-reserved key passes). Raises
    `UsageError` for a key that is not a metadata field, or a value of another type.
    """
    if not filters:
        return None
    from qdrant_client import models

    must: list[Any] = []
    fields = {str(k): str(v) for k, v in dict(recorded or {}).items()}
    for key, value in filters.items():
        if key in BASE_COLUMNS or key.startswith("vec_") or (recorded is not None and key not in fields):
            raise UsageError(f"cannot filter on {key!r}: not a metadata field of this index")
        if key in fields:
            check_filter_value(key, value, fields[key])
        if isinstance(value, list | tuple):
            must.append(models.FieldCondition(key=key, match=models.MatchAny(any=list(value))))
        else:
            must.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
    return models.Filter(must=must)


def dense_query(
    precision: StoredPrecision, version: str, query_vector: np.ndarray, depth: int, flt: Any
) -> tuple[dict[str, Any], float, float]:
    """Return the dense search of ``query_vector`` (of ``version``) at its ``precision``, and the score transform.

    Output: (``query_points`` arguments: ``query``, ``using``, maybe ``prefetch``; scale; offset):
    a hit's score is ``scale * qdrant_score + offset``. float32 / float16: the reduced query.
    int8 (stored as code + 128): ``q * step``, offset ``q · min + 0.5 q · step``. binary (bits 0/1):
    the query's signs ``s``, ``1 - 2 h / dim = (2 s · bits - sum(s)) / dim``; rescored, the
    ``depth * oversample`` nearest bits are prefetched and scored by the rescoring copy.
    """
    from qdrant_client import models

    reduced = precision.reduce(query_vector[None, :])[0]

    def int8(q: np.ndarray) -> tuple[list[float], float]:
        scaled, offset = precision.int8_query(q)
        return scaled.tolist(), offset - 128.0 * float(scaled.sum())

    if precision.store in ("float32", "float16"):
        return {"query": reduced.tolist(), "using": vector_column(version)}, 1.0, 0.0
    if precision.store == "int8":
        vector, offset = int8(reduced)
        return {"query": vector, "using": vector_column(version)}, 1.0, offset
    signs = np.where(reduced > 0, 1.0, -1.0)
    if precision.rescore is None:
        return ({"query": signs.tolist(), "using": vector_column(version)}, 2.0 / precision.dim,
                -float(signs.sum()) / precision.dim)  # fmt: skip
    bits = models.Prefetch(
        query=signs.tolist(), using=vector_column(version), limit=depth * precision.oversample, filter=flt
    )
    if precision.rescore == "float32":
        vector, offset = reduced.tolist(), 0.0
    else:
        vector, offset = int8(reduced)
    return {"query": vector, "using": rescore_column(version), "prefetch": [bits]}, 1.0, offset
