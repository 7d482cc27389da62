"""Benchmark: building the serving index against bare encoding, and search latency of the two backends.

(a) Build throughput. The same texts (the bundled demo corpus, or its first
``--docs``) are encoded by a bare ``SentenceTransformer.encode`` (batch 32,
normalised) and indexed by `domainfit.index.embed.sync_index` into a fresh
LanceDB table through the stage's encoder (`DenseRetriever.encode_documents`,
no cache), one commit per ``--batch`` documents. The two alternate
``--rounds`` times in one run; the ratio is bare seconds / index seconds of
the medians (1.0: indexing costs nothing beyond encoding; target ≥ 0.9).

(c) Search latency. ``--vectors`` seeded random unit vectors (384-d) in a
LanceDB table and in a Qdrant local-mode collection through domainfit's
backends (Qdrant's local mode in memory: its search is the same brute force as on
disk, the load skips the SQLite writes); single-query exact top-10 latency (p50, p99) over ``--queries``
queries (Qdrant local is brute force in Python: fewer queries, ``--qdrant-queries``);
the ids of both are compared. With ``--ann`` an IVF-PQ index is built on the
LanceDB column and its latency and recall@10 against exact search are reported.

(Parity) With ``--parity WORKSPACE`` the benchmark queries of the test split are
searched through that workspace's index (flat, the pointer's model) and by
bench's exact search; both NDCG@10 and their difference are recorded.

Results go to ``bench/results/index.json`` and a summary on stdout. On a
machine shared with other work run it under ``nice``: the ratios compare
measurements of the same run, the absolute times are the machine's at the time.

Usage: python bench/bench_index.py [--docs 1000] [--batch 256] [--rounds 3] [--vectors 100000]
       [--queries 200] [--qdrant-queries 20] [--ann] [--skip-build] [--skip-search] [--parity WORKSPACE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).parent / "results" / "index.json"


def _percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0-100) of ``values``."""
    return float(np.percentile(np.asarray(values), q))


def build_throughput(docs_limit: int, batch: int, rounds: int) -> dict[str, Any]:
    """Time bare encoding and index building of the same texts, alternating; return both and their ratio."""
    import domainfit
    from domainfit.core.models import load_bi_encoder
    from domainfit.core.progress import set_quiet
    from domainfit.data.beir import read_corpus
    from domainfit.index.backend import IndexDocument
    from domainfit.index.embed import sync_index
    from domainfit.index.lance import LanceBackend
    from domainfit.retrieval.dense import DenseRetriever

    set_quiet(True)
    corpus = read_corpus(Path(domainfit.__file__).parent / "demo_data" / "corpus.jsonl")
    docs = [IndexDocument(d.id, d.text, d.title) for d in list(corpus.values())[:docs_limit]]
    texts = [d.embed_text() for d in docs]
    model = load_bi_encoder(max_seq_length=256)
    retriever = DenseRetriever(model, batch_size=32)
    model.encode(texts[:64], batch_size=32, normalize_embeddings=True)  # warm up
    bare, index = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        bare.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as folder:
            store = LanceBackend(folder, "bench")
            start = time.perf_counter()
            result = sync_index(store, docs, "minilm", 384, retriever.encode_documents, batch_size=batch)
            store.optimize()
            index.append(time.perf_counter() - start)
            assert result.embedded == len(docs) and store.count() == len(docs)
            store.close()
    b, i = statistics.median(bare), statistics.median(index)
    return {
        "documents": len(docs),
        "commit_batch": batch,
        "rounds": rounds,
        "bare_encode_seconds": [round(x, 3) for x in bare],
        "index_build_seconds": [round(x, 3) for x in index],
        "bare_docs_per_second": round(len(docs) / b, 2),
        "index_docs_per_second": round(len(docs) / i, 2),
        "ratio_index_over_bare": round(b / i, 3),
        "target": 0.9,
    }


def _time_queries(search: Any, queries: np.ndarray) -> tuple[list[float], list[list[str]]]:
    """Run each query once; return the latencies (ms) and the ids found."""
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        hits = search(q)
        times.append((time.perf_counter() - start) * 1000)
        found.append([h.id for h in hits])
    return times, found


def _summary(times: list[float], found: list[list[str]], truth: list[list[str]]) -> dict[str, Any]:
    """Return the latency percentiles of a run and how many queries found exactly the numpy ids."""
    return {
        "queries": len(times),
        "p50_ms": round(_percentile(times, 50), 2),
        "p99_ms": round(_percentile(times, 99), 2),
        "same_ids_as_numpy": sum(f == t for f, t in zip(found, truth, strict=False)),
    }


def search_latency(n: int, n_queries: int, qdrant_queries: int, ann: bool) -> dict[str, Any]:
    """Time exact top-10 search of LanceDB and Qdrant local mode on the same vectors; optionally LanceDB IVF-PQ."""
    from domainfit.index.backend import IndexDocument, SearchQuery
    from domainfit.index.lance import LanceBackend
    from domainfit.index.qdrant import QdrantBackend

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.normal(size=(n_queries, 384)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    docs = [IndexDocument(f"v{i}", f"vector {i}") for i in range(n)]
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    truth = [[f"v{j}" for j in row] for row in exact]
    out: dict[str, Any] = {"vectors": n, "dimension": 384, "k": 10}
    with tempfile.TemporaryDirectory() as folder:
        lance = LanceBackend(Path(folder) / "lancedb", "bench")
        start = time.perf_counter()
        lance.upsert(docs, {"r": vectors})
        out["lancedb_load_seconds"] = round(time.perf_counter() - start, 2)
        times, found = _time_queries(lambda q: lance.search(SearchQuery(vector=q.tolist(), k=10)), queries)
        out["lancedb_flat"] = _summary(times, found, truth)
        if ann:
            from lancedb.index import IvfPq

            start = time.perf_counter()
            lance.table.create_index("vec_r", config=IvfPq(distance_type="dot", num_partitions=64, num_sub_vectors=48))
            built = time.perf_counter() - start

            def ann_search(q: np.ndarray) -> list[Any]:
                rows = (lance.table.search(q, vector_column_name="vec_r").distance_type("dot").nprobes(16)
                        .refine_factor(10).select(["id", "_distance"]).limit(10).to_arrow().to_pylist())  # fmt: skip
                return [type("H", (), {"id": r["id"]}) for r in rows]

            times, found = _time_queries(ann_search, queries)
            recall = statistics.mean(len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True))
            out["lancedb_ivf_pq"] = {"build_seconds": round(built, 2), "nprobes": 16, "refine_factor": 10,
                                     "p50_ms": round(_percentile(times, 50), 2),
                                     "p99_ms": round(_percentile(times, 99), 2),
                                     "recall_at_10_vs_exact": round(recall, 4)}  # fmt: skip
        lance.close()
        qdrant = QdrantBackend(":memory:", "bench")  # local mode's search is the same in memory; loads faster
        start = time.perf_counter()
        qdrant.upsert(docs, {"r": vectors})
        out["qdrant_local_load_seconds"] = round(time.perf_counter() - start, 2)
        few = queries[:qdrant_queries]
        times, found = _time_queries(lambda q: qdrant.search(SearchQuery(vector=q.tolist(), k=10)), few)
        out["qdrant_local_exact"] = _summary(times, found, truth)
        qdrant.close()
    ratio = out["qdrant_local_exact"]["p50_ms"] / out["lancedb_flat"]["p50_ms"]
    out["p50_ratio_qdrant_over_lancedb"] = round(ratio, 2)
    return out


def parity(workspace: Path, data: Path | None, split: str) -> dict[str, Any]:
    """NDCG@10 of the benchmark queries searched through a workspace's index against bench's exact search."""
    import domainfit
    from domainfit.core.progress import set_quiet
    from domainfit.data.beir import load_beir
    from domainfit.evaluation.metrics import evaluate
    from domainfit.index.backend import SearchQuery, open_index
    from domainfit.retrieval.dense import DenseRetriever

    set_quiet(True)
    dataset = load_beir(data or Path(domainfit.__file__).parent / "demo_data")
    qrels = dataset.qrels[split]
    queries = {qid: dataset.queries[qid].text for qid in qrels}
    store, pointer = open_index(workspace / "index")
    dense = DenseRetriever(pointer.model, cache_dir=workspace / "cache" / "embeddings",
                           max_seq_length=pointer.max_seq_length)  # fmt: skip
    dense.index(dataset.corpus)
    exact = dense.search(queries, k=100)
    vectors = dense.encode_queries(list(queries.values()))
    served = {
        qid: {h.id: h.score for h in store.search(SearchQuery(vector=v.tolist(), k=100, version=pointer.version))}
        for qid, v in zip(queries, vectors, strict=True)
    }
    store.close()
    ours, theirs = evaluate(qrels, served, ["ndcg@10"])["ndcg@10"], evaluate(qrels, exact, ["ndcg@10"])["ndcg@10"]
    return {"model": Path(pointer.model).name, "system": pointer.system, "split": split, "queries": len(queries),
            "ndcg@10_index": round(ours, 6), "ndcg@10_exact": round(theirs, 6),
            "abs_difference": abs(ours - theirs)}  # fmt: skip


def main() -> None:
    """Parse the options, run the benchmarks asked for, write ``bench/results/index.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--qdrant-queries", type=int, default=20)
    parser.add_argument("--ann", action="store_true")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--parity", type=Path, help="a workspace with a built index: its NDCG@10 against exact")
    parser.add_argument("--data", type=Path, help="the BEIR folder of --parity (default: the bundled demo)")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    results: dict[str, Any] = json.loads(OUT.read_text()) if OUT.is_file() else {}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "niceness": os.nice(0)}
    if not args.skip_build:
        results["build"] = build_throughput(args.docs, args.batch, args.rounds)
        print(json.dumps(results["build"], indent=2))
    if not args.skip_search:
        results["search"] = search_latency(args.vectors, args.queries, args.qdrant_queries, args.ann)
        print(json.dumps(results["search"], indent=2))
    if args.parity is not None:
        results["parity"] = parity(args.parity, args.data, args.split)
        print(json.dumps(results["parity"], indent=2))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
