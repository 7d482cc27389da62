"""One backend suite, run against LanceDB and Qdrant (local mode) on real folders.

Seeded random unit vectors stand in for a model here (the suite is about the
stores): exact search must return the ids of a numpy exact search, and the same
ids on both backends; filters, BM25, hybrid, versions side by side, tags and
restore, stale-vector protection and read-only handles are checked on each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from domainfit.core.errors import UsageError
from domainfit.index.backend import (
    IndexBackend,
    IndexDocument,
    IndexMissing,
    SearchQuery,
    open_backend,
)

BACKENDS = ("lancedb", "qdrant")
DIM = 16
WORDS = ["refund", "invoice", "password", "router", "backup", "latency", "quota", "kernel", "token", "cache"]


def corpus(n: int = 60, seed: int = 0) -> tuple[list[IndexDocument], np.ndarray]:
    """``n`` documents (two words each, a language and a year) and their seeded unit vectors."""
    rng = np.random.default_rng(seed)
    docs = [
        IndexDocument(
            f"d{i:03d}",
            f"{WORDS[i % 10]} {WORDS[(i * 3 + 1) % 10]} note {i}",
            title=f"Doc {i}",
            metadata={"lang": "en" if i % 3 else "fr", "year": 2020 + i % 4},
        )
        for i in range(n)
    ]
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return docs, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def queries(n: int = 12, seed: int = 1) -> np.ndarray:
    """Seeded unit query vectors."""
    q = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def exact_ids(q: np.ndarray, docs: list[IndexDocument], vectors: np.ndarray, k: int, keep=None) -> list[str]:
    """The numpy exact top-k ids (restricted to the docs ``keep`` accepts)."""
    rows = [i for i, d in enumerate(docs) if keep is None or keep(d)]
    scores = vectors[rows] @ q
    order = np.argsort(-scores, kind="stable")[:k]
    return [docs[rows[i]].id for i in order]


def build(folder: Path, backend: str, docs, vectors) -> IndexBackend:
    """A store of ``docs`` with version ``a`` filled, its full-text index built."""
    store = open_backend(folder, "suite", backend=backend)
    store.upsert(docs, {"a": vectors})
    store.optimize()
    return store


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each backend in turn."""
    return request.param


def test_exact_search_matches_numpy_and_the_other_backend(tmp_path: Path) -> None:
    docs, vectors = corpus()
    stores = {b: build(tmp_path / b, b, docs, vectors) for b in BACKENDS}
    try:
        for q in queries():
            expected = exact_ids(q, docs, vectors, 10)
            found = {b: [h.id for h in s.search(SearchQuery(vector=q.tolist(), k=10))] for b, s in stores.items()}
            assert found["lancedb"] == expected
            assert found["qdrant"] == expected
            scores = {b: [h.score for h in s.search(SearchQuery(vector=q.tolist(), k=10))] for b, s in stores.items()}
            np.testing.assert_allclose(scores["lancedb"], scores["qdrant"], atol=1e-5)
    finally:
        for s in stores.values():
            s.close()


def test_filters_fields_and_bm25(tmp_path: Path, backend: str) -> None:
    docs, vectors = corpus()
    store = build(tmp_path, backend, docs, vectors)
    try:
        q = queries()[0]
        hits = store.search(SearchQuery(vector=q.tolist(), k=5, filters={"lang": "fr"}, fields=("title", "lang")))
        assert [h.id for h in hits] == exact_ids(q, docs, vectors, 5, keep=lambda d: d.metadata["lang"] == "fr")
        assert all(h.fields == {"title": f"Doc {int(h.id[1:])}", "lang": "fr"} for h in hits)
        years = store.search(SearchQuery(vector=q.tolist(), k=50, filters={"year": [2020, 2021]}))
        assert years and all(int(h.id[1:]) % 4 in (0, 1) for h in years)
        lexical = store.search(SearchQuery(text="kernel", mode="bm25", k=50))
        with_term = {d.id for d in docs if "kernel" in d.text}
        assert {h.id for h in lexical} == with_term
        english = store.search(SearchQuery(text="kernel", mode="bm25", k=50, filters={"lang": "en"}))
        assert english and {h.id for h in english} == {
            i for i in with_term if docs[int(i[1:])].metadata["lang"] == "en"
        }
        with pytest.raises(UsageError):
            store.search(SearchQuery(vector=q.tolist(), filters={"text": "x"}))
    finally:
        store.close()


def test_hybrid_fuses_both_lists(tmp_path: Path, backend: str) -> None:
    docs, vectors = corpus()
    store = build(tmp_path, backend, docs, vectors)
    try:
        target = docs[7]  # its own vector and its own number as the query: first in both lists
        word = "7"
        hits = store.search(SearchQuery(text=word, vector=vectors[7].tolist(), mode="hybrid", k=5))
        assert hits[0].id == target.id
        assert hits[0].score == pytest.approx(2 / 61, abs=1e-6)  # RRF with k = 60, first in each list
        convex = store.search(
            SearchQuery(text=word, vector=vectors[7].tolist(), mode="hybrid", k=5, fusion="convex", alpha=1.0)
        )
        assert [h.id for h in convex] == exact_ids(vectors[7], docs, vectors, 5)  # alpha 1: dense order
    finally:
        store.close()


def test_versions_side_by_side_and_stale_vectors(tmp_path: Path, backend: str) -> None:
    docs, vectors = corpus()
    store = build(tmp_path, backend, docs, vectors)
    try:
        other = queries(len(docs), seed=5)
        half = docs[:30]
        store.add_version("b", DIM)
        assert store.versions() == {"a": DIM, "b": DIM}
        assert store.set_vectors("b", [d.id for d in half], [d.content_hash for d in half], other[:30]) == 30
        assert store.set_vectors("b", [docs[40].id], ["not-its-hash"], other[40:41]) == 0
        states = store.states("b")
        assert sum(s.has_vector for s in states.values()) == 30 and len(states) == len(docs)
        q = queries()[2]
        found_b = [h.id for h in store.search(SearchQuery(vector=q.tolist(), k=10, version="b"))]
        assert found_b == exact_ids(q, half, other[:30], 10)
        found_a = [h.id for h in store.search(SearchQuery(vector=q.tolist(), k=10, version="a"))]
        assert found_a == exact_ids(q, docs, vectors, 10)
        with pytest.raises(UsageError):
            store.search(SearchQuery(vector=q.tolist(), k=10))  # two versions: name one
        with pytest.raises(UsageError):
            store.add_version("b", DIM + 1)
    finally:
        store.close()


def test_tag_then_restore_gives_the_previous_results_exactly(tmp_path: Path, backend: str) -> None:
    docs, vectors = corpus()
    store = build(tmp_path, backend, docs, vectors)
    q = queries()[3]
    dense = SearchQuery(vector=q.tolist(), k=10, fields=("text",))
    lexical = SearchQuery(text="refund", mode="bm25", k=10)
    before = (store.search(dense), store.search(lexical), store.count())
    store.create_tag("prod1")
    top = before[0][0].id
    changed = IndexDocument(top, "changed text about refund refund", metadata={"lang": "en", "year": 2020})
    store.upsert([changed])  # its vector of version a is gone: content changed
    store.delete([before[0][1].id])
    store.optimize()
    assert store.search(dense)[0].id != top
    assert store.count() == before[2] - 1
    store.restore("prod1")
    store.optimize()
    assert (store.search(dense), store.search(lexical), store.count()) == before
    assert "prod1" in store.tags()
    store.close()
    reader = open_backend(tmp_path, "suite", backend=backend, read_only=True)
    try:
        reader.checkout("prod1")
        assert reader.search(dense) == before[0]
        with pytest.raises(UsageError):
            reader.upsert([changed])
        with pytest.raises(IndexMissing):
            reader.checkout("no-such-tag")
    finally:
        reader.close()


def test_missing_store_is_reported(tmp_path: Path, backend: str) -> None:
    with pytest.raises(IndexMissing):
        open_backend(tmp_path / "nothing", "suite", backend=backend, read_only=True)
