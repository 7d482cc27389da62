"""Searchable stores of compressed document vectors, built on FAISS.

Every store takes unit-length float32 document vectors (n, d) and offers:

* ``search(queries, k)`` – top-``k`` ids (int64, -1 when fewer exist) and scores
  (float32, -inf for missing), best first;
* ``pair_scores(queries, rows)`` – the score the store gives query ``i`` and
  each document ``rows[i, j]`` (the same number `search` returns for it);
* sizes: ``code_bytes`` and ``overhead_bytes`` per vector (memory), ``fixed_bytes``
  (codebooks, ranges, coarse centroids) and ``serialized_bytes()`` (the FAISS index as written).

Stores: float32 (``IndexFlatIP``), float16 (``IndexScalarQuantizer`` fp16),
int8 (``IndexScalarQuantizer`` 8-bit holding the sentence-transformers codes
and ranges), binary (``IndexBinaryFlat``, Hamming), PQ (``IndexPQ``), IVF-PQ
(``IndexIVFPQ``), and `RescoredStore`, which rescores a store's oversampled
candidates with another store.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from domainfit.compress.quantize import (
    Int8Codec,
    binary_codes,
    hamming_distances,
    hamming_to_similarity,
)

#: Largest number of float values gathered at once by `Store.pair_scores`.
_PAIR_BLOCK = 1 << 23
#: From this many queries on, a batch is scored block by block with BLAS instead of one query at a time.
BATCH_MIN = 32
#: Documents decoded and scored per block in a BLAS batch search.
_DOC_BLOCK = 1 << 14


def require_faiss() -> Any:
    """Import FAISS, or raise an ImportError saying how to install it."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency of the compress extra
        raise ImportError("compression needs FAISS: pip install 'domainfit[faiss]' (faiss-cpu)") from exc
    return faiss


def _f32(x: np.ndarray) -> np.ndarray:
    """Contiguous float32 copy (or view) of ``x``."""
    return np.ascontiguousarray(x, dtype=np.float32)


def _missing_to_inf(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give ids of -1 (nothing found) the score -inf."""
    scores = scores.astype(np.float32, copy=True)
    scores[ids < 0] = -np.inf
    return ids.astype(np.int64), scores


def _merge_top_k(
    best: tuple[np.ndarray, np.ndarray], ids: np.ndarray, scores: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the ``k`` highest of the current best (ids, scores) and new candidates, per query (unordered)."""
    all_ids = np.concatenate([best[0], ids], axis=1)
    all_scores = np.concatenate([best[1], scores], axis=1)
    if all_scores.shape[1] <= k:
        return all_ids, all_scores
    keep = np.argpartition(-all_scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(all_ids, keep, axis=1), np.take_along_axis(all_scores, keep, axis=1)


def blocked_top_k(
    nq: int, ntotal: int, k: int, score_block: Any, block: int = _DOC_BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` over documents scored block by block.

    Inputs: the number of queries and documents, ``k``, and
    ``score_block(start, stop)`` returning the (nq, stop - start) scores of
    documents ``start:stop`` (typically one BLAS matrix product over decoded
    codes, so a batch of queries reads every code once). Output: (ids,
    scores), best first, ties broken by the lower id.
    """
    best = (np.empty((nq, 0), dtype=np.int64), np.empty((nq, 0), dtype=np.float32))
    for start in range(0, ntotal, block):
        stop = min(start + block, ntotal)
        sims = score_block(start, stop)
        if sims.shape[1] > k:
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            sims = np.take_along_axis(sims, part, axis=1)
        else:
            part = np.broadcast_to(np.arange(stop - start), sims.shape)
        best = _merge_top_k(best, part + start, sims.astype(np.float32), k)
    order = np.lexsort((best[0], -best[1]), axis=1)
    return np.take_along_axis(best[0], order, axis=1), np.take_along_axis(best[1], order, axis=1)


class Store:
    """Base class: a store of ``ntotal`` vectors of ``dim`` dimensions (see the module docstring)."""

    kind = "store"

    def __init__(self, docs: np.ndarray) -> None:
        if docs.ndim != 2 or docs.shape[0] == 0:
            raise ValueError(f"a store needs a non-empty (n, d) matrix, got shape {docs.shape}")
        self.ntotal, self.dim = int(docs.shape[0]), int(docs.shape[1])
        self.index: Any = None

    @property
    def code_bytes(self) -> float:
        """Bytes of one vector's code."""
        raise NotImplementedError

    @property
    def overhead_bytes(self) -> float:
        """Further bytes per vector held in memory (e.g. the ids of an inverted list)."""
        return 0.0

    @property
    def fixed_bytes(self) -> int:
        """Bytes held once per index (codebooks, ranges, coarse centroids)."""
        return 0

    def serialized_bytes(self) -> int:
        """Size of the FAISS index when written to disk."""
        faiss = require_faiss()
        if isinstance(self.index, faiss.IndexBinary):
            return int(faiss.serialize_index_binary(self.index).size)
        return int(faiss.serialize_index(self.index).size)

    def _raw_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search returning (scores, ids)."""
        scores, ids = self.index.search(_f32(queries), k)
        return scores, ids

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (ids, scores) for each query row, best first."""
        k = min(k, self.ntotal)
        scores, ids = self._raw_search(queries, k)
        return _missing_to_inf(ids, scores)

    def pair_scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Scores (nq, m) of query ``i`` with documents ``rows[i]`` (rows of -1 score -inf)."""
        rows = np.asarray(rows, dtype=np.int64)
        safe = np.where(rows < 0, 0, rows)
        queries = _f32(queries)
        scores = np.empty(rows.shape, dtype=np.float32)
        step = max(1, _PAIR_BLOCK // max(1, rows.shape[1] * self.dim))  # bound the gathered block's memory
        for start in range(0, rows.shape[0], step):
            scores[start : start + step] = self._pair_scores(queries[start : start + step], safe[start : start + step])
        return np.where(rows < 0, -np.inf, scores).astype(np.float32)

    def _pair_scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Scores for valid rows; subclasses implement."""
        raise NotImplementedError


class _ReconstructingStore(Store):
    """A store whose pair scores are inner products with decoded vectors (computed once, lazily)."""

    def __init__(self, docs: np.ndarray) -> None:
        super().__init__(docs)
        self._decoded: np.ndarray | None = None

    def decoded(self) -> np.ndarray:
        """All documents as the store sees them, decoded to float32 (n, d)."""
        if self._decoded is None:
            self._decoded = self._decode_all()
        return self._decoded

    def _decode_all(self) -> np.ndarray:
        """Decode every stored vector; subclasses implement."""
        raise NotImplementedError

    def _pair_scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Inner products of each query with its decoded documents."""
        return np.einsum("nd,nmd->nm", queries, self.decoded()[rows], dtype=np.float32)


class Float32Store(_ReconstructingStore):
    """Exact inner-product search over float32 vectors (FAISS ``IndexFlatIP``)."""

    kind = "float32"

    def __init__(self, docs: np.ndarray) -> None:
        super().__init__(docs)
        self.index = require_faiss().IndexFlatIP(self.dim)
        self._decoded = _f32(docs)
        self.index.add(self._decoded)

    def _raw_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS flat search; batches of `BATCH_MIN` queries or more take FAISS's BLAS path.

        (FAISS only switches to BLAS above ``distance_compute_blas_threshold``
        queries, 128,000 in recent releases; below it each query is a separate scan.)
        """
        faiss = require_faiss()
        before = faiss.cvar.distance_compute_blas_threshold
        faiss.cvar.distance_compute_blas_threshold = BATCH_MIN
        try:
            scores, ids = self.index.search(_f32(queries), k)
        finally:
            faiss.cvar.distance_compute_blas_threshold = before
        return scores, ids

    @property
    def code_bytes(self) -> float:
        """Four bytes per dimension."""
        return 4.0 * self.dim


class Float16Store(_ReconstructingStore):
    """Exact search over float16 vectors (FAISS ``IndexScalarQuantizer`` with ``QT_fp16``)."""

    kind = "float16"

    def __init__(self, docs: np.ndarray) -> None:
        super().__init__(docs)
        faiss = require_faiss()
        self.index = faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        self.index.add(_f32(docs))
        self.halves = np.asarray(docs, dtype=np.float16)

    def _decode_all(self) -> np.ndarray:
        """Decode the stored float16 codes with FAISS."""
        return _f32(self.index.reconstruct_n(0, self.ntotal))

    def _raw_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS scan for a few queries; for a batch, BLAS over float16 blocks widened to float32."""
        if queries.shape[0] < BATCH_MIN:
            return super()._raw_search(queries, k)
        q = _f32(queries)
        ids, scores = blocked_top_k(len(q), self.ntotal, k, lambda a, b: q @ self.halves[a:b].astype(np.float32).T)
        return scores, ids

    def _pair_scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Float query · the paired float16 documents."""
        return np.einsum("nd,nmd->nm", queries, self.halves[rows].astype(np.float32), dtype=np.float32)

    @property
    def code_bytes(self) -> float:
        """Two bytes per dimension."""
        return 2.0 * self.dim


class Int8Store(_ReconstructingStore):
    """Asymmetric int8 search: float query · int8 document decoded to its bucket centre.

    The codes and per-dimension ranges are sentence-transformers' (`Int8Codec`,
    ranges calibrated on the corpus vectors unless a codec is given); they are
    loaded into a FAISS 8-bit ``IndexScalarQuantizer``, whose decoding is the same.
    """

    kind = "int8"

    def __init__(self, docs: np.ndarray, codec: Int8Codec | None = None) -> None:
        super().__init__(docs)
        faiss = require_faiss()
        self.codec = codec or Int8Codec.calibrate(docs)
        self.codes = self.codec.encode(docs)
        self.index = faiss.IndexScalarQuantizer(self.dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        lo, hi = self.codec.ranges
        faiss.copy_array_to_vector(np.concatenate([lo, hi - lo]).astype(np.float32), self.index.sq.trained)
        self.index.is_trained = True
        self.index.add_sa_codes(self.codes.view(np.uint8) ^ np.uint8(0x80))  # code + 128, as FAISS stores it

    def _decode_all(self) -> np.ndarray:
        """Decode the int8 codes to their bucket centres."""
        return self.codec.decode(self.codes)

    def _raw_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS 8-bit scan for a few queries; for a batch, BLAS over int8 blocks decoded to float32."""
        if queries.shape[0] < BATCH_MIN:
            return super()._raw_search(queries, k)
        # q · (min + (c + 128.5) · step) = (q · step) · c + q · (min + 128.5 · step): one product per block
        q = _f32(queries)
        scaled = q * self.codec.steps
        offset = q @ (self.codec.ranges[0] + 128.5 * self.codec.steps)
        ids, scores = blocked_top_k(
            len(q), self.ntotal, k, lambda a, b: scaled @ self.codes[a:b].astype(np.float32).T + offset[:, None]
        )
        return scores, ids

    def _pair_scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Float query · the paired documents' int8 codes, decoded on the fly."""
        return np.einsum("nd,nmd->nm", queries, self.codec.decode(self.codes[rows]), dtype=np.float32)

    @property
    def code_bytes(self) -> float:
        """One byte per dimension."""
        return float(self.dim)

    @property
    def fixed_bytes(self) -> int:
        """The float32 ranges."""
        return self.codec.fixed_bytes


class BinaryStore(Store):
    """Hamming search over sign bits (FAISS ``IndexBinaryFlat``); scores are ``1 - 2 h / dim``."""

    kind = "binary"

    def __init__(self, docs: np.ndarray) -> None:
        super().__init__(docs)
        if self.dim % 8:
            raise ValueError(f"binary codes need a dimension that is a multiple of 8, got {self.dim}")
        self.codes = binary_codes(docs)
        self.index = require_faiss().IndexBinaryFlat(self.dim)
        self.index.add(self.codes)

    def _raw_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Hamming search on the queries' sign bits, distances turned into similarities."""
        distances, ids = self.index.search(binary_codes(queries), k)
        return hamming_to_similarity(distances, self.dim), ids

    def _pair_scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Similarity of each query's bits with its documents' bits."""
        return hamming_to_similarity(hamming_distances(binary_codes(queries), self.codes[rows]), self.dim)

    @property
    def code_bytes(self) -> float:
        """One bit per dimension."""
        return float(math.ceil(self.dim / 8))


class PQStore(_ReconstructingStore):
    """Product quantisation, inner product (FAISS ``IndexPQ``): ``m`` sub-vectors of ``nbits`` bits.

    Codebooks are trained on the documents themselves (needs at least ``2**nbits`` of them).
    """

    kind = "pq"

    def __init__(self, docs: np.ndarray, m: int, nbits: int = 8, seed: int = 13) -> None:
        super().__init__(docs)
        faiss = require_faiss()
        if self.dim % m:
            raise ValueError(f"PQ needs m dividing the dimension: {m} does not divide {self.dim}")
        if self.ntotal < 2**nbits:
            raise ValueError(f"PQ with nbits={nbits} needs at least {2**nbits} training vectors, got {self.ntotal}")
        self.m, self.nbits = m, nbits
        self.index = faiss.IndexPQ(self.dim, m, nbits, faiss.METRIC_INNER_PRODUCT)
        self.index.pq.cp.seed = seed
        self.index.pq.cp.min_points_per_centroid = 1  # small corpora: train anyway (noted by the sweep)
        data = _f32(docs)
        self.index.train(data)
        self.index.add(data)

    def _decode_all(self) -> np.ndarray:
        """Every stored code decoded by FAISS."""
        return _f32(self.index.reconstruct_n(0, self.ntotal))

    @property
    def code_bytes(self) -> float:
        """``m * nbits`` bits, rounded up to bytes."""
        return float(math.ceil(self.m * self.nbits / 8))

    @property
    def fixed_bytes(self) -> int:
        """The float32 codebooks: ``2**nbits`` centroids per sub-quantiser."""
        return int(2**self.nbits * self.dim * 4)


class IVFPQStore(_ReconstructingStore):
    """Inverted file over PQ codes of residuals, inner product (FAISS ``IndexIVFPQ``).

    ``nlist`` coarse centroids; each query probes ``nprobe`` lists, so this is
    approximate search. Each stored vector also costs its 8-byte id in its list.
    """

    kind = "ivfpq"

    def __init__(
        self, docs: np.ndarray, m: int, nbits: int = 8, *, nlist: int, nprobe: int = 8, seed: int = 13
    ) -> None:
        super().__init__(docs)
        faiss = require_faiss()
        if self.dim % m:
            raise ValueError(f"IVF-PQ needs m dividing the dimension: {m} does not divide {self.dim}")
        if self.ntotal < max(2**nbits, nlist):
            raise ValueError(f"IVF-PQ needs at least max(2**nbits, nlist) training vectors, got {self.ntotal}")
        self.m, self.nbits, self.nlist = m, nbits, nlist
        self.quantizer = faiss.IndexFlatIP(self.dim)
        self.index = faiss.IndexIVFPQ(self.quantizer, self.dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
        self.index.cp.seed = seed
        self.index.cp.min_points_per_centroid = 1
        self.index.pq.cp.seed = seed
        self.index.pq.cp.min_points_per_centroid = 1
        data = _f32(docs)
        self.index.train(data)
        self.index.add(data)
        self.index.nprobe = min(nprobe, nlist)
        self.index.make_direct_map()

    def _decode_all(self) -> np.ndarray:
        """Every stored vector reconstructed (coarse centroid + decoded residual)."""
        return _f32(self.index.reconstruct_n(0, self.ntotal))

    @property
    def code_bytes(self) -> float:
        """``m * nbits`` bits, rounded up to bytes."""
        return float(math.ceil(self.m * self.nbits / 8))

    @property
    def overhead_bytes(self) -> float:
        """The 8-byte id stored with each code in its inverted list."""
        return 8.0

    @property
    def fixed_bytes(self) -> int:
        """Coarse centroids and PQ codebooks, float32."""
        return int(self.nlist * self.dim * 4 + 2**self.nbits * self.dim * 4)


class RescoredStore(Store):
    """Search ``base`` for ``k * oversample`` candidates, then rank them by ``rescorer``'s scores.

    The base store is what lives in memory; the rescorer's vectors are read
    only for the candidates (typically from disk), so they are reported as
    ``rescore_bytes`` rather than memory.
    """

    kind = "rescored"

    def __init__(self, base: Store, rescorer: Store, oversample: int) -> None:
        if (base.ntotal, base.dim) != (rescorer.ntotal, rescorer.dim):
            raise ValueError("base and rescoring stores must hold the same vectors")
        if oversample < 1:
            raise ValueError("oversample must be >= 1")
        self.ntotal, self.dim = base.ntotal, base.dim
        self.base, self.rescorer, self.oversample = base, rescorer, oversample
        self.index = base.index

    @property
    def code_bytes(self) -> float:
        """The base store's code (what is searched in memory)."""
        return self.base.code_bytes

    @property
    def overhead_bytes(self) -> float:
        """The base store's per-vector overhead."""
        return self.base.overhead_bytes

    @property
    def rescore_bytes(self) -> float:
        """Bytes per vector of the rescoring copy (read for candidates only)."""
        return self.rescorer.code_bytes

    @property
    def fixed_bytes(self) -> int:
        """Both stores' fixed bytes."""
        return self.base.fixed_bytes + self.rescorer.fixed_bytes

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Oversampled base search, rescored, best ``k`` first (ties: the base order)."""
        k = min(k, self.ntotal)
        candidates, _ = self.base.search(queries, min(k * self.oversample, self.ntotal))
        scores = self.rescorer.pair_scores(queries, candidates)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        ids = np.take_along_axis(candidates, order, axis=1)
        return ids, np.take_along_axis(scores, order, axis=1)

    def _pair_scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Score with the rescorer."""
        return self.rescorer.pair_scores(queries, rows)
