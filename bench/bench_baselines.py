"""Benchmark: domainfit's encoding and BM25 against the libraries they wrap, in one run.

1. Dense encoding: ``domainfit.retrieval.dense.encode_texts`` (cold cache) vs a
   bare ``SentenceTransformer.encode`` on the same texts, same batch size.
   Ratio = bare seconds / domainfit seconds (>= 0.95 means no overhead).
2. BM25 index + top-100 retrieval: domainfit's ``BM25Retriever`` vs ``bm25s``
   called directly (same tokenizer settings) vs ``rank_bm25.BM25Okapi``.

Runs are alternated and repeated; the median is reported. Results go to
``bench/results/baselines.json`` and a table on stdout.

Usage: python bench/bench_baselines.py [--docs 1000] [--queries 0] [--repeats 3] [--bm25-repeats 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_encoding(texts: list[str], repeats: int, batch_size: int) -> dict:
    from domainfit.core.models import load_bi_encoder
    from domainfit.core.progress import set_quiet
    from domainfit.retrieval.cache import EmbeddingCache
    from domainfit.retrieval.dense import encode_texts

    set_quiet(True)
    model = load_bi_encoder()
    model.encode(texts[:64], batch_size=batch_size)  # warm-up
    bare, ours = [], []
    for _ in range(repeats):
        t, ref = timed(
            lambda: model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
        )
        bare.append(t)
        with tempfile.TemporaryDirectory() as tmp:
            cache = EmbeddingCache(Path(tmp), "bench")
            t, got = timed(lambda cache=cache: encode_texts(model, texts, batch_size=batch_size, cache=cache))
        ours.append(t)
        assert np.allclose(ref, got, atol=1e-4), "domainfit embeddings differ from plain encode"
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp), "bench")
        encode_texts(model, texts, batch_size=batch_size, cache=cache)
        warm, _ = timed(
            lambda: encode_texts(model, texts, batch_size=batch_size, cache=EmbeddingCache(Path(tmp), "bench"))
        )
    b, o = statistics.median(bare), statistics.median(ours)
    return {
        "texts": len(texts),
        "batch_size": batch_size,
        "bare_encode_s": round(b, 3),
        "domainfit_encode_s": round(o, 3),
        "ratio_bare_over_domainfit": round(b / o, 3),
        "domainfit_cached_rerun_s": round(warm, 3),
        "bare_runs_s": [round(x, 3) for x in bare],
        "domainfit_runs_s": [round(x, 3) for x in ours],
    }


def bench_bm25(doc_ids: list[str], docs: list[str], queries: list[str], repeats: int, k: int = 100) -> dict:
    import bm25s
    import Stemmer
    from rank_bm25 import BM25Okapi

    from domainfit.retrieval.lexical import BM25Retriever

    def ours():
        r = BM25Retriever()
        r.index_texts(doc_ids, docs)
        return r.search_texts(queries, k)

    def direct():
        stemmer = Stemmer.Stemmer("english")
        tok = bm25s.tokenization.Tokenizer(stopwords="en", stemmer=stemmer)
        corpus_tokens = tok.tokenize(docs, return_as="tuple", show_progress=False)
        retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        retriever.index(corpus_tokens, show_progress=False)
        q = tok.decode(tok.tokenize(queries, update_vocab=False, return_as="ids", show_progress=False))
        return retriever.retrieve(q, k=k, show_progress=False)

    def rank_bm25():
        stemmer = Stemmer.Stemmer("english")
        tok = bm25s.tokenization.Tokenizer(stopwords="en", stemmer=stemmer)
        tokenized = tok.tokenize(docs, return_as="string", show_progress=False)
        index = BM25Okapi(tokenized, k1=1.2, b=0.75)
        qtok = tok.tokenize(queries, update_vocab=False, return_as="string", show_progress=False)
        return [np.argsort(-index.get_scores(q))[:k] for q in qtok]

    times: dict[str, list[float]] = {"domainfit": [], "bm25s": [], "rank_bm25": []}
    for _ in range(repeats):
        for name, fn in (("domainfit", ours), ("bm25s", direct), ("rank_bm25", rank_bm25)):
            t, _ = timed(fn)
            times[name].append(t)
    med = {name: statistics.median(v) for name, v in times.items()}
    return {
        "documents": len(docs),
        "queries": len(queries),
        "k": k,
        "seconds": {n: round(v, 3) for n, v in med.items()},
        "ratio_bm25s_over_domainfit": round(med["bm25s"] / med["domainfit"], 3),
        "ratio_rank_bm25_over_domainfit": round(med["rank_bm25"] / med["domainfit"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="documents to encode")
    parser.add_argument("--queries", type=int, default=0, help="BM25 queries (0 = every demo query)")
    parser.add_argument("--repeats", type=int, default=3, help="encoding repeats")
    parser.add_argument("--bm25-repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "baselines.json")
    args = parser.parse_args()

    from domainfit.data.beir import load_beir
    from domainfit.data.demo import demo_path

    data = load_beir(demo_path())
    doc_ids = list(data.corpus)
    all_docs = [d.full_text() for d in data.corpus.values()]
    queries = [q.text for q in data.queries.values()][: args.queries or None]
    result = {
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "encoding": bench_encoding(all_docs[: args.docs], args.repeats, args.batch_size),
        "bm25": bench_bm25(doc_ids, all_docs, queries, args.bm25_repeats),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    enc, bm = result["encoding"], result["bm25"]
    print(
        f"dense encoding of {enc['texts']} texts: bare {enc['bare_encode_s']}s, "
        f"domainfit {enc['domainfit_encode_s']}s, ratio {enc['ratio_bare_over_domainfit']} "
        f"(>= 0.95 means no overhead); cached re-run {enc['domainfit_cached_rerun_s']}s"
    )
    print(
        f"BM25 index+top{bm['k']} ({bm['documents']} docs, {bm['queries']} queries): {bm['seconds']}; "
        f"bm25s/domainfit {bm['ratio_bm25s_over_domainfit']}, "
        f"rank_bm25/domainfit {bm['ratio_rank_bm25_over_domainfit']}"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
