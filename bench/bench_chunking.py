"""Benchmark: chunked vs unchunked dense retrieval on long documents.

Builds the generated long-document corpus (`domainfit.data.longdocs`: Markdown site
logs of ~900 tokens each, one relevant sentence placed deep inside, past the
model's 256-token window; one query per document) and measures NDCG@10, recall@10
and MRR@10 of

* BM25 (for reference) and unchunked dense retrieval (the model reads the first 254 tokens);
* chunked dense retrieval with each chunker (fixed, structural, recursive) at the
  model window, aggregated by ``max`` and by ``sum-top-n`` (n = 2);
* a sweep of fixed-window size x overlap, the best point marked.

Embeddings are cached in a temporary folder, so identical chunk texts are encoded once.
Results go to ``bench/results/chunking.json`` and a table on stdout.

Usage: python bench/bench_chunking.py [--docs 24] [--sections 8] [--sentences 9] [--sizes 128 254] [--overlaps 0 32]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

METRICS = ["ndcg@10", "recall@10", "mrr@10"]
NOTE = (
    "seconds = chunking + encoding + search; chunk texts already encoded by an earlier row (same chunks, "
    "other aggregation or overlap) come from the embedding cache, so those rows are fast"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--sections", type=int, default=8)
    parser.add_argument("--sentences", type=int, default=9)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 254])
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 32])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "chunking.json")
    args = parser.parse_args()

    import warnings

    import sentence_transformers
    import transformers

    from domainfit.core.models import load_bi_encoder
    from domainfit.core.progress import set_quiet
    from domainfit.data.chunking import Chunker, TruncationWarning, token_lengths, token_offsets
    from domainfit.data.config import ChunkingConfig
    from domainfit.data.longdocs import build_long_corpus
    from domainfit.evaluation.metrics import evaluate
    from domainfit.retrieval.chunked import ChunkedDenseRetriever
    from domainfit.retrieval.dense import DenseRetriever
    from domainfit.retrieval.lexical import BM25Retriever

    set_quiet(True)
    warnings.simplefilter("ignore", TruncationWarning)
    dataset = build_long_corpus(args.docs, args.sections, args.sentences, seed=args.seed)
    qrels = dataset.qrels["test"]
    queries = {qid: q.text for qid, q in dataset.queries.items()}
    model = load_bi_encoder()
    docs = list(dataset.corpus.values())
    lengths = token_lengths(model.tokenizer, [d.full_text() for d in docs])
    needles = [len(token_offsets(model.tokenizer, [d.text[: d.metadata["needle_char"]]])[0]) for d in docs]
    rows: list[dict] = []

    def record(name: str, run: dict, seconds: float, **extra) -> dict:
        row = {"system": name, **extra, **{m: round(v, 4) for m, v in evaluate(qrels, run, METRICS).items()}}
        row["seconds"] = round(seconds, 1)
        rows.append(row)
        print(f"{name:<44} " + "  ".join(f"{m} {row[m]:.4f}" for m in METRICS) + f"  {row['seconds']:>6.1f}s")
        return row

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        bm25 = BM25Retriever()
        bm25.index(dataset.corpus)
        record("bm25", bm25.search(queries, 100), time.perf_counter() - start)
        dense = DenseRetriever(model, cache_dir=Path(tmp), max_seq_length=256)
        start = time.perf_counter()
        dense.index(dataset.corpus)
        record("dense (unchunked)", dense.search(queries, 100), time.perf_counter() - start)

        def chunked(method: str, size: int | None, overlap: int, aggregate: str = "max") -> tuple[dict, float, int]:
            cfg = ChunkingConfig(method=method, size=size, overlap=overlap, aggregate=aggregate, top_n=2)
            retriever = ChunkedDenseRetriever(
                dense, Chunker.for_model(model, cfg), aggregate=cfg.aggregate, top_n=cfg.top_n
            )
            start = time.perf_counter()
            retriever.index(dataset.corpus)
            return retriever.search(queries, 100), time.perf_counter() - start, len(retriever.chunks)

        for method in ("fixed", "structural", "recursive"):
            for aggregate in ("max", "sum-top-n"):
                run, seconds, n_chunks = chunked(method, None, 32, aggregate)
                record(
                    f"dense-chunked {method} ({aggregate})",
                    run,
                    seconds,
                    method=method,
                    aggregate=aggregate,
                    size=254,
                    overlap=32,
                    n_chunks=n_chunks,
                )
        sweep = []
        for size in args.sizes:
            for overlap in args.overlaps:
                if overlap >= size:
                    continue
                run, seconds, n_chunks = chunked("fixed", size, overlap)
                sweep.append(
                    record(
                        f"sweep fixed size={size} overlap={overlap}",
                        run,
                        seconds,
                        size=size,
                        overlap=overlap,
                        n_chunks=n_chunks,
                        best=False,
                    )
                )
        best = max(sweep, key=lambda r: r["ndcg@10"])
        best["best"] = True
        print(f"best sweep point: size {best['size']}, overlap {best['overlap']} (ndcg@10 {best['ndcg@10']:.4f})")

    unchunked = next(r for r in rows if r["system"] == "dense (unchunked)")
    recursive = next(r for r in rows if r["system"] == "dense-chunked recursive (max)")
    result = {
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "versions": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
        },
        "model": "sentence-transformers/all-MiniLM-L6-v2 (max_seq_length 256, window 254 text tokens)",
        "corpus": {
            "documents": len(docs),
            "queries": len(queries),
            "tokens_per_document": {"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths)},
            "relevant_sentence_token_position": {
                "min": min(needles),
                "median": statistics.median(needles),
                "max": max(needles),
            },
            "seed": args.seed,
        },
        "systems": rows,
        "sweep_best": {"size": best["size"], "overlap": best["overlap"], "ndcg@10": best["ndcg@10"]},
        "ndcg@10_gain_recursive_over_unchunked": round(recursive["ndcg@10"] - unchunked["ndcg@10"], 4),
        "note": NOTE,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
