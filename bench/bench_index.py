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

(Operating points) With ``--precision`` the benchmark queries of the split
are searched through indexes whose vectors are stored at compress's
configurations (``--specs``, and with ``--compress-workspace`` the operating
point that workspace's compress chose, next to the NDCG@10 compress recorded for
it): for each, compress's own NDCG@10 (its `build_index` over the same
embeddings, searched to compress's depth, scored by the same `evaluate`) and the
index's (LanceDB, and Qdrant local mode with ``--precision-qdrant``), their
difference, and the bytes of the stored vector columns against float32.

Results go to ``bench/results/index.json`` and a summary on stdout. On a
machine shared with other work run it under ``nice``: the ratios compare
measurements of the same run, the absolute times are the machine's at the time.

Usage: python bench/bench_index.py [--docs 1000] [--batch 256] [--rounds 3] [--vectors 100000]
       [--queries 200] [--qdrant-queries 20] [--ann] [--skip-build] [--skip-search] [--parity WORKSPACE]
       [--precision] [--specs trunc-256/float32,...] [--compress-workspace WORKSPACE] [--precision-qdrant]
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


#: Configurations compared by default (``--specs``): truncation, float16, int8, binary with and without rescoring.
DEFAULT_SPECS = ("full/float32", "trunc-256/float32", "full/float16", "full/int8", "trunc-256/int8",
                 "full/binary", "full/binary+float32x4", "full/binary+int8x4")  # fmt: skip


def _column_bytes(folder: Path, table: str, version: str) -> int:
    """Return the in-memory Arrow bytes of a version's vector column(s) (the searched one and any rescoring copy)."""
    import lancedb

    data = lancedb.connect(str(folder)).open_table(table).to_arrow()
    return sum(data.column(c).nbytes for c in data.column_names if c.startswith(f"vec_{version}"))


def _folder_bytes(folder: Path) -> int:
    """Return the bytes of every file under ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def precision_parity(
    data: Path | None, split: str, specs: list[str], compress_workspace: Path | None, with_qdrant: bool
) -> dict[str, Any]:
    """NDCG@10 of vectors stored at compress's configurations: compress's own index against domainfit's index."""
    import domainfit
    from domainfit.compress.config import CompressConfig
    from domainfit.compress.embed import encode_corpus, encode_split_queries, open_retriever
    from domainfit.compress.pipeline import build_index
    from domainfit.compress.spec import parse_spec
    from domainfit.compress.sweep import to_run
    from domainfit.core.progress import set_quiet
    from domainfit.data.beir import load_beir
    from domainfit.evaluation.metrics import evaluate
    from domainfit.index.backend import IndexDocument, SearchQuery, open_backend
    from domainfit.index.precision import RangeCalibration, StoredPrecision

    set_quiet(True)
    recorded: dict[str, Any] = {}
    model_name = None
    if compress_workspace is not None:
        results = json.loads((compress_workspace / "compress" / "results.json").read_text(encoding="utf-8"))
        chosen = results["operating_point"]["name"]
        by_name = {v["name"]: v for v in results["variants"]}
        recorded = {"workspace_operating_point": chosen, "model": results["model"],
                    "ndcg@10_recorded_by_compress": by_name[chosen]["metrics"].get("ndcg@10")}  # fmt: skip
        model_name = results["model"]
        specs = [chosen, *[s for s in specs if s != chosen]]
    config = CompressConfig()
    if model_name is not None:  # encode as that compress run encoded (its batch size and sequence length)
        saved = compress_workspace / "compress" / "config.json"  # type: ignore[operator]
        settings = json.loads(saved.read_text(encoding="utf-8"))["compress"] if saved.is_file() else {}
        config = CompressConfig.model_validate({**settings, "model": model_name})
    dataset = load_beir(data or Path(domainfit.__file__).parent / "demo_data")
    with tempfile.TemporaryDirectory() as cache:
        retriever = open_retriever(config.model, Path(cache), batch_size=config.batch_size,
                                   max_seq_length=config.max_seq_length)  # fmt: skip
        corpus = encode_corpus(dataset, retriever)
        queries = encode_split_queries(dataset, split, retriever)
    full_dim = int(corpus.vectors.shape[1])
    by_id = dataset.corpus
    docs = [IndexDocument(i, by_id[i].text, by_id[i].title or "") for i in corpus.doc_ids]
    rows: list[dict[str, Any]] = []
    float32_bytes: int | None = None
    for name in specs:
        spec = parse_spec(name, full_dim)
        reference = build_index(spec, corpus.vectors)
        ids, scores = reference.search(queries.vectors, config.depth)
        theirs = evaluate(queries.qrels, to_run(ids, scores, corpus.doc_ids, queries.query_ids), ["ndcg@10"])
        precision = StoredPrecision.of(spec.name, full_dim)
        if precision.needs_ranges:
            calibration = RangeCalibration(precision)
            calibration.add(corpus.vectors)
            precision = precision.calibrated(calibration.ranges())
        row: dict[str, Any] = {"configuration": spec.name, "ndcg@10_compress": round(theirs["ndcg@10"], 6),
                               "compress_bytes_per_vector": reference.bytes_per_vector,
                               "compress_rescore_bytes_per_vector": reference.rescore_bytes_per_vector}  # fmt: skip
        for backend in ("lancedb", "qdrant") if with_qdrant else ("lancedb",):
            with tempfile.TemporaryDirectory() as folder:
                store = open_backend(folder, "parity", backend=backend)
                store.add_version("m", full_dim, precision)
                store.upsert(docs, {"m": corpus.vectors})
                start = time.perf_counter()
                run = {
                    qid: {h.id: h.score for h in store.search(SearchQuery(vector=v.tolist(), k=config.depth))}
                    for qid, v in zip(queries.query_ids, queries.vectors, strict=True)
                }
                seconds = time.perf_counter() - start
                ours = evaluate(queries.qrels, run, ["ndcg@10"])["ndcg@10"]
                row[f"ndcg@10_{backend}"] = round(ours, 6)
                row[f"abs_difference_{backend}"] = abs(ours - theirs["ndcg@10"])
                row[f"{backend}_ms_per_query"] = round(1000 * seconds / len(queries.query_ids), 2)
                if backend == "lancedb":
                    store.close()
                    row["lancedb_vector_bytes"] = _column_bytes(Path(folder) / "lancedb", "parity", "m")
                    row["lancedb_folder_bytes"] = _folder_bytes(Path(folder) / "lancedb")
                    if spec.name == parse_spec("full/float32", full_dim).name:
                        float32_bytes = row["lancedb_vector_bytes"]
                else:
                    store.close()
        rows.append(row)
    for row in rows:
        if float32_bytes:
            row["vector_bytes_vs_float32"] = round(row["lancedb_vector_bytes"] / float32_bytes, 4)
    return {"model": Path(str(config.model)).name, "split": split, "queries": len(queries.query_ids),
            "documents": len(docs), "depth": config.depth, **recorded, "configurations": rows}  # fmt: skip


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
    parser.add_argument("--precision", action="store_true", help="NDCG@10 of compress's configurations, stored")
    parser.add_argument("--specs", default=",".join(DEFAULT_SPECS), help="comma-separated compress configurations")
    parser.add_argument("--compress-workspace", type=Path, help="a workspace whose compress chose an operating point")
    parser.add_argument("--precision-qdrant", action="store_true", help="also store them in Qdrant's local mode")
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
    if args.precision:
        specs = [s.strip() for s in args.specs.split(",") if s.strip()]
        results["precision"] = precision_parity(args.data, args.split, specs, args.compress_workspace,
                                                args.precision_qdrant)  # fmt: skip
        print(json.dumps(results["precision"], indent=2))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
