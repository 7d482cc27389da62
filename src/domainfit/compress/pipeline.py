"""A compressed index built from a `VariantSpec`: reducer, store and optional rescoring.

Inputs are full-width, unit-length float32 embeddings; the pipeline reduces
queries the same way as documents, so callers never see reduced vectors.
Example::

    index = build_index(parse_spec("pca-128/int8", 384), doc_vectors)
    ids, scores = index.search(query_vectors, k=10)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from domainfit.compress.reduce import Reducer, make_reducer
from domainfit.compress.spec import VariantSpec, auto_nlist
from domainfit.compress.stores import (
    BinaryStore,
    Float16Store,
    Float32Store,
    Int8Store,
    IVFPQStore,
    PQStore,
    RescoredStore,
    Store,
)


@dataclass
class CompressedIndex:
    """A searchable compressed index over one corpus.

    Attributes: the spec, the fitted reducer, the store, how long building
    took (reduction fit and transform, quantisation, training, adding) and
    the IVF list count when the store is IVF-PQ.
    """

    spec: VariantSpec
    reducer: Reducer
    store: Store
    build_seconds: float
    nlist: int | None = None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (ids, scores) for full-width query embeddings (nq, D), best first."""
        return self.store.search(self.reducer.apply(queries), k)

    def pair_scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Scores (nq, m) this configuration gives query ``i`` and documents ``rows[i]``."""
        return self.store.pair_scores(self.reducer.apply(queries), rows)

    @property
    def bytes_per_vector(self) -> float:
        """In-memory bytes per vector: the code plus per-vector overhead (IVF ids)."""
        return self.store.code_bytes + self.store.overhead_bytes

    @property
    def rescore_bytes_per_vector(self) -> float:
        """Bytes per vector of the rescoring copy (0 when not rescored); read for candidates only."""
        return self.store.rescore_bytes if isinstance(self.store, RescoredStore) else 0.0

    @property
    def fixed_bytes(self) -> int:
        """Bytes held once: PCA matrix, int8 ranges, codebooks, coarse centroids."""
        return self.reducer.fixed_bytes + self.store.fixed_bytes

    def index_bytes(self) -> int:
        """Measured size of this corpus's index: the serialised FAISS index plus the reducer's matrix."""
        return self.store.serialized_bytes() + self.reducer.fixed_bytes

    def projected_bytes(self, n_vectors: int) -> int:
        """Projected in-memory index size for ``n_vectors`` vectors: fixed bytes + n × bytes per vector."""
        return round(self.fixed_bytes + n_vectors * self.bytes_per_vector)


def _store(spec: VariantSpec, kind: str, docs: np.ndarray, nlist: int | None, nprobe: int, seed: int) -> Store:
    """Build the store of one kind over reduced document vectors."""
    if kind == "float32":
        return Float32Store(docs)
    if kind == "float16":
        return Float16Store(docs)
    if kind == "int8":
        return Int8Store(docs)
    if kind == "binary":
        return BinaryStore(docs)
    if kind == "pq":
        return PQStore(docs, spec.pq_m, spec.pq_nbits, seed=seed)
    if kind == "ivfpq":
        assert nlist is not None
        return IVFPQStore(docs, spec.pq_m, spec.pq_nbits, nlist=nlist, nprobe=nprobe, seed=seed)
    raise ValueError(f"unknown store {kind!r}")


def build_index(
    spec: VariantSpec, docs: np.ndarray, *, nlist: int | None = None, nprobe: int = 8, seed: int = 13
) -> CompressedIndex:
    """Build the index a spec describes over full-width document embeddings (n, D).

    ``nlist`` (IVF lists) defaults to `auto_nlist`; ``nprobe`` and ``seed``
    apply to IVF-PQ and PQ training. The build time is measured here.
    """
    start = time.perf_counter()
    reducer = make_reducer(spec.reduction, spec.dim).fit(docs)
    reduced = reducer.apply(docs)
    lists = (nlist or auto_nlist(docs.shape[0])) if spec.store == "ivfpq" else None
    store = _store(spec, spec.store, reduced, lists, nprobe, seed)
    if spec.rescore is not None:
        rescorer = Int8Store(reduced) if spec.rescore == "int8" else Float32Store(reduced)
        store = RescoredStore(store, rescorer, spec.oversample)
    return CompressedIndex(spec, reducer, store, time.perf_counter() - start, lists)
