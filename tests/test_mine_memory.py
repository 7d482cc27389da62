"""Mining memory stays bounded: queries are searched in blocks, never as a full query x corpus matrix."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

from domainfit.core.progress import set_quiet
from domainfit.mine.negatives import MiningSettings, NegativeMiner
from domainfit.synth.datasets import TrainingPair


class VectorEncoder:
    """Serves precomputed query vectors by text (``"q<i>"`` -> row i)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def encode_queries(self, texts):
        return self.vectors[[int(t[1:]) for t in texts]]

    def encode_documents(self, texts):  # pragma: no cover - no free-text positives here
        raise AssertionError("not used")


def random_unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def mine_random(n_docs: int, n_queries: int, dim: int, backend: str, block_mib: int, seed: int = 0):
    """Mine dense + random negatives for random queries over random documents; return the result."""
    rng = np.random.default_rng(seed)
    docs = random_unit(rng, n_docs, dim)
    queries = random_unit(rng, n_queries, dim)
    positives = rng.integers(0, n_docs, n_queries)
    pairs = [TrainingPair(f"q{i}", f"q{i}", f"d{positives[i]}", "labelled", "qrels") for i in range(n_queries)]
    ids = [f"d{j}" for j in range(n_docs)]
    settings = MiningSettings(
        sources=("dense", "random"),
        negatives=4,
        search_backend=backend,
        block_mib=block_mib,
        query_batch=512,
        drop_duplicates=False,
        relative_margin=None,  # random positives: a margin would reject most candidates
    )
    miner = NegativeMiner(ids, ids, docs, VectorEncoder(queries), settings)
    return miner.mine(pairs, [()] * n_queries), docs, queries


def test_numpy_search_memory_is_bounded_by_the_block():
    set_quiet(True)
    n_docs, n_queries = 20_000, 2_000
    tracemalloc.start()
    try:
        result, docs, _ = mine_random(n_docs, n_queries, 32, "numpy", block_mib=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        set_quiet(False)
    full_matrix = n_queries * n_docs * 4
    inputs = docs.nbytes * 2  # documents + queries, generated inside the traced block
    assert len(result.examples) == n_queries
    assert peak - inputs < full_matrix / 10, f"peak {peak / 2**20:.1f} MiB vs full matrix {full_matrix / 2**20:.0f} MiB"


def test_dense_candidates_are_the_exact_nearest_neighbours():
    """Blocked search returns what one brute-force matrix product would (window 10..100, top sampling)."""
    set_quiet(True)
    rng = np.random.default_rng(1)
    docs, queries = random_unit(rng, 3_000, 16), random_unit(rng, 50, 16)
    pairs = [TrainingPair(f"q{i}", f"q{i}", "d0", "labelled", "qrels") for i in range(50)]
    ids = [f"d{j}" for j in range(3_000)]
    for backend in ("numpy", "faiss"):
        settings = MiningSettings(
            sources=("dense",), negatives=5, sampling="top", relative_margin=None, search_backend=backend, block_mib=1
        )
        result = NegativeMiner(ids, ids, docs, VectorEncoder(queries), settings).mine(pairs, [()] * 50)
        for example in result.examples:
            sims = docs @ queries[example.pair]
            order = [j for j in np.argsort(-sims, kind="stable") if j != 0][10:15]
            assert [n.doc_id for n in example.negatives] == [f"d{j}" for j in order]
            assert [n.rank for n in example.negatives] == [10, 11, 12, 13, 14]
    set_quiet(False)


_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, tracemalloc
    sys.path.insert(0, sys.argv[4])
    from domainfit.core.progress import set_quiet
    from test_mine_memory import mine_random
    set_quiet(True)
    n_docs, n_queries, backend = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    import numpy as np
    from test_mine_memory import random_unit
    # warm-up on a tiny problem so imports and thread pools are not counted
    mine_random(2_000, 10, 64, backend, 64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    result, docs, queries = mine_random(n_docs, n_queries, 64, backend, 64)
    _, traced = tracemalloc.get_traced_memory()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"examples": len(result.examples), "rss_growth": after - before, "traced_peak": traced,
                      "inputs": docs.nbytes + queries.nbytes}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_memory_stays_bounded_on_100k_documents(backend):
    """5,000 queries x 100,000 documents: a full score matrix would take 2 GB; mining must stay far below."""
    from pathlib import Path

    n_docs, n_queries = 100_000, 5_000
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(n_docs), str(n_queries), backend, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    report = json.loads(run.stdout.strip().splitlines()[-1])
    full_matrix = n_queries * n_docs * 4
    assert report["examples"] == n_queries
    assert report["rss_growth"] < full_matrix / 8, report
    assert report["traced_peak"] - report["inputs"] < full_matrix / 8, report
