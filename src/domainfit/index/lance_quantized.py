"""LanceDB searches over vectors stored compressed: int8 codes scored in numpy, packed bits by Hamming.

LanceDB 0.40 does not search an int8 column with a float query, so
`int8_scan` scores every filtered row's codes as compress does; `binary_search`
runs LanceDB's Hamming search on the sign bits and, when the version keeps a
rescoring copy, ranks the nearest candidates by it. Both take the open table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from domainfit.index.fusion import overfetch
from domainfit.index.lance_arrow import codes as column_codes
from domainfit.index.precision import StoredPrecision
from domainfit.index.types import Hit, SearchQuery, rescore_column, vector_column


def int8_scan(
    table: Any,
    precision: StoredPrecision,
    column: str,
    reduced: np.ndarray,
    k: int,
    select: list[str],
    condition: str,
    fields: Sequence[str],
) -> list[Hit]:
    """Score every filtered row's int8 codes against the float query (compress's asymmetric int8)."""
    rows = table.search().where(condition).select([*select, column]).limit(None).to_arrow()
    if rows.num_rows == 0:
        return []
    stored = column_codes(rows.column(column), precision.dim, np.int8)
    scores = precision.int8_scores(reduced, stored)
    best = np.lexsort((np.arange(len(scores)), -scores))[:k]
    ids = rows.column("id").to_pylist()
    wanted = {f: rows.column(f).to_pylist() for f in fields if f != "id"}
    return [Hit(str(ids[i]), float(scores[i]), {f: v[i] for f, v in wanted.items()}) for i in best]


def binary_search(
    table: Any,
    precision: StoredPrecision,
    version: str,
    reduced: np.ndarray,
    sizes: tuple[int, int],
    select: list[str],
    condition: str,
    query: SearchQuery,
) -> list[Hit]:
    """Hamming search on the sign bits; rescored: the ``want * oversample`` nearest ranked by the copy.

    ``sizes``: (hits to return, the k asked for). Candidates tied on Hamming distance at the
    cut are taken by document id (a store returns equal distances in no set order).
    """
    from domainfit.compress.quantize import binary_codes, hamming_to_similarity

    k, want = sizes
    bits = np.asarray(binary_codes(reduced[None, :]), dtype=np.uint8)[0]
    depth = overfetch(want * precision.oversample) if precision.rescore else k
    extra = [rescore_column(version)] if precision.rescore else []
    rows = (
        table.search(bits, vector_column_name=vector_column(version))
        .distance_type("hamming")
        .bypass_vector_index()
        .where(condition, prefilter=True)
        .select([*select, *extra, "_distance"])
        .limit(depth)
        .to_arrow()
    )
    if rows.num_rows == 0:
        return []
    ids = rows.column("id").to_pylist()
    wanted = {f: rows.column(f).to_pylist() for f in query.fields if f != "id"}
    if precision.rescore is None:
        hamming = np.asarray(rows.column("_distance").to_pylist(), dtype=np.float32)
        scores = hamming_to_similarity(hamming, precision.dim)
        order = np.lexsort((np.asarray(ids, dtype=object).astype(str), -scores))
    else:
        hamming = np.asarray(rows.column("_distance").to_pylist(), dtype=np.float32)
        nearest = np.lexsort((np.asarray(ids, dtype=object).astype(str), hamming))[: want * precision.oversample]
        if precision.rescore == "float32":
            copy = column_codes(rows.column(extra[0]), precision.dim, np.float32)
            scores = (copy @ reduced).astype(np.float32)
        else:
            scores = precision.int8_scores(reduced, column_codes(rows.column(extra[0]), precision.dim, np.int8))
        order = nearest[np.argsort(-scores[nearest], kind="stable")]  # ties: the Hamming order, as compress
    return [Hit(str(ids[i]), float(scores[i]), {f: v[i] for f, v in wanted.items()}) for i in order[:k]]
