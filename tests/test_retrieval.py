import numpy as np
import pytest

from domainfit.data.beir import load_beir
from domainfit.retrieval.cache import EmbeddingCache
from domainfit.retrieval.dense import DenseRetriever, encode_texts, exact_search
from domainfit.retrieval.hybrid import convex, minmax, rrf, tune_convex
from domainfit.retrieval.lexical import BM25Retriever


def test_exact_search_matches_brute_force():
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(500, 16)).astype(np.float32)
    queries = rng.normal(size=(37, 16)).astype(np.float32)
    for backend in ("numpy", "faiss"):
        idx, scores = exact_search(queries, docs, 10, backend=backend)
        full = queries @ docs.T
        expected = np.argsort(-full, axis=1, kind="stable")[:, :10]
        assert np.array_equal(idx, expected), backend
        assert np.allclose(scores, np.take_along_axis(full, expected, axis=1), atol=1e-4)


def test_exact_search_k_larger_than_corpus():
    docs = np.eye(3, dtype=np.float32)
    idx, scores = exact_search(np.array([[0, 1, 0]], dtype=np.float32), docs, 10, backend="numpy")
    assert idx.shape == (1, 3) and idx[0, 0] == 1 and scores[0, 0] == pytest.approx(1.0)


def test_bm25_finds_identifier(mini_beir):
    data = load_beir(mini_beir)
    bm25 = BM25Retriever()
    bm25.index(data.corpus)
    run = bm25.search({"q": "ERR_AUTH_702", "empty": "zzzz"}, k=5)
    assert next(iter(run["q"])) == "d001"
    assert run["empty"] == {}


def test_encode_cache_hits_and_matches_plain_encode(tmp_path, minilm):
    texts = ["the cat sat", "a dog ran", "the cat sat", "quota exceeded QUOTA_409"]
    cache = EmbeddingCache(tmp_path, "fp")
    first = encode_texts(minilm, texts, cache=cache)
    plain = minilm.encode(texts, normalize_embeddings=True)
    assert np.allclose(first, plain, atol=1e-5)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert len(cache) == 3  # duplicates encoded once
    reopened = EmbeddingCache(tmp_path, "fp")
    found, missing = reopened.get([cache_key for cache_key in reopened._index])
    assert missing == [] and len(found) == 3

    calls = []
    original = minilm.encode

    def spy(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    minilm.encode = spy
    try:
        again = encode_texts(minilm, texts, cache=reopened)
        encode_texts(minilm, [*texts, "a new text"], cache=reopened)
    finally:
        del minilm.encode
    assert np.allclose(again, first)
    assert calls == [["a new text"]]


def test_interrupted_shard_is_ignored(tmp_path):
    cache = EmbeddingCache(tmp_path, "fp")
    cache.put(["a", "b"], np.ones((2, 4), dtype=np.float32))
    # a shard whose keys file never got written (interrupted run)
    np.save(tmp_path / "fp" / "zzz.npy", np.zeros((1, 4), dtype=np.float32))
    reopened = EmbeddingCache(tmp_path, "fp")
    assert len(reopened) == 2


def test_dense_retriever_ranks_relevant_first(tmp_path, mini_beir, minilm):
    data = load_beir(mini_beir)
    dense = DenseRetriever(minilm, cache_dir=tmp_path / "cache")
    dense.index(data.corpus)
    run = dense.search({"q": "how do I get my money back"}, k=3)
    assert next(iter(run["q"])) == "d007"  # the refund policy document
    assert list(run["q"].values()) == sorted(run["q"].values(), reverse=True)


def test_rrf_and_convex_match_ranx_fusion():
    from ranx import Run as RanxRun
    from ranx import fuse

    lexical = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}, "q2": {"x": 5.0, "y": 1.0}}
    dense = {"q1": {"b": 0.9, "d": 0.8, "a": 0.1}, "q2": {"y": 0.7, "z": 0.6}}
    ours = rrf([lexical, dense], k=60)
    theirs = fuse([RanxRun(lexical), RanxRun(dense)], method="rrf", params={"k": 60}).to_dict()
    for qid in ours:
        for doc, score in ours[qid].items():
            assert score == pytest.approx(theirs[qid][doc], abs=1e-9)
    ours_c = convex(lexical, dense, alpha=0.3)
    theirs_c = fuse(
        [RanxRun(lexical), RanxRun(dense)],
        norm="min-max",
        method="wsum",
        params={"weights": (0.7, 0.3)},
    ).to_dict()
    for qid in ours_c:
        for doc, score in ours_c[qid].items():
            assert score == pytest.approx(theirs_c[qid][doc], abs=1e-9)


def test_minmax_and_convex_extremes():
    lexical = {"q": {"a": 10.0, "b": 0.0}}
    dense = {"q": {"b": 0.9, "c": 0.1}}
    assert minmax(lexical)["q"] == {"a": 1.0, "b": 0.0}
    only_dense = convex(lexical, dense, alpha=1.0)["q"]
    assert max(only_dense, key=only_dense.get) == "b"
    only_lex = convex(lexical, dense, alpha=0.0)["q"]
    assert max(only_lex, key=only_lex.get) == "a"


def test_tune_convex_picks_the_weight_that_helps():
    lexical = {"q1": {"bad": 1.0, "good": 0.0}, "q2": {"bad2": 1.0, "good2": 0.5}}
    dense = {"q1": {"good": 1.0, "bad": 0.0}, "q2": {"good2": 1.0, "bad2": 0.0}}
    qrels = {"q1": {"good": 1}, "q2": {"good2": 1}}

    def top1(qr, run):
        return sum(1.0 for q in qr if max(run[q], key=run[q].get) in qr[q]) / len(qr)

    tuned = tune_convex(lexical, dense, qrels, top1)
    assert tuned.alpha >= 0.5
    assert tuned.scores[tuned.alpha] == max(tuned.scores.values()) == 1.0
    assert tuned.scores[0.0] == 0.0


def test_cached_documents_counts_what_the_cache_holds_under_the_document_prompt(tmp_path, minilm):
    minilm.prompts = {"query": "query: ", "document": "passage: "}
    try:
        dense = DenseRetriever(minilm, cache_dir=tmp_path / "cache")
        assert dense.cached_documents(["alpha", "beta"]) == 0
        dense.encode_documents(["alpha", "beta", "gamma"])
        assert dense.cached_documents(["alpha", "beta", "delta", "gamma"]) == 3
        dense.encode_queries(["epsilon"])  # a query's vector is another prompt's: not a document's
        assert dense.cached_documents(["epsilon"]) == 0
    finally:
        minilm.prompts = {}
