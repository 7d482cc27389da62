"""Search latency per query, measured in batches and one query at a time.

Batch latency is a batch's wall time divided by its size (p50/p95 over every
timed batch); single-query latency is the wall time of a search with one query
(p50/p95 over a seeded sample of queries). Every measurement is preceded by
one untimed warm-up search.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

SearchFn = Callable[[np.ndarray, int], Any]


@dataclass
class Latency:
    """Latency of one configuration, in milliseconds per query, and batch throughput."""

    batch_p50_ms: float
    batch_p95_ms: float
    batch_queries_per_second: float
    single_p50_ms: float
    single_p95_ms: float
    single_queries: int
    batch_size: int
    repeats: int

    def to_json(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)


@contextlib.contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """Run the block with FAISS (OpenMP) and BLAS limited to ``threads`` threads, restoring them afterwards.

    On a machine shared with other work, more threads than free cores make
    every parallel region wait for the scheduler, which shows up as
    millisecond-long latency spikes; one thread per query is also how a
    search service usually runs.
    """
    from domainfit.compress.stores import require_faiss

    faiss = require_faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            limits: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        else:
            limits = threadpool_limits(limits=threads)
        with limits:
            yield
    finally:
        faiss.omp_set_num_threads(before)


def _ms(values: list[float], q: float) -> float:
    """Percentile ``q`` of seconds, in milliseconds, rounded to microseconds."""
    return round(float(np.percentile(np.asarray(values), q)) * 1000, 4)


def measure_latency(
    search: SearchFn,
    queries: np.ndarray,
    k: int,
    *,
    batch_size: int = 64,
    single_queries: int = 100,
    repeats: int = 3,
    seed: int = 13,
) -> Latency:
    """Time ``search(queries, k)`` in batches and one query at a time.

    Inputs: a search function taking (query matrix, k), the query matrix
    (nq, D), ``k``, the batch size, how many queries to time singly (a seeded
    sample without replacement, all when fewer), and the number of repeats.
    Output: a `Latency`.
    """
    if queries.shape[0] == 0:
        raise ValueError("latency needs at least one query")
    search(queries[:batch_size], k)  # warm-up
    per_query: list[float] = []
    total_time = 0.0
    total_queries = 0
    for _ in range(repeats):
        for start in range(0, queries.shape[0], batch_size):
            chunk = queries[start : start + batch_size]
            began = time.perf_counter()
            search(chunk, k)
            elapsed = time.perf_counter() - began
            per_query.append(elapsed / chunk.shape[0])
            total_time += elapsed
            total_queries += chunk.shape[0]
    rng = np.random.default_rng(seed)
    sample = rng.choice(queries.shape[0], size=min(single_queries, queries.shape[0]), replace=False)
    search(queries[sample[:1]], k)  # warm-up
    single: list[float] = []
    for _ in range(repeats):
        for row in sample:
            one = queries[row : row + 1]
            began = time.perf_counter()
            search(one, k)
            single.append(time.perf_counter() - began)
    return Latency(
        batch_p50_ms=_ms(per_query, 50),
        batch_p95_ms=_ms(per_query, 95),
        batch_queries_per_second=round(total_queries / max(total_time, 1e-12), 1),
        single_p50_ms=_ms(single, 50),
        single_p95_ms=_ms(single, 95),
        single_queries=int(sample.size),
        batch_size=batch_size,
        repeats=repeats,
    )
