"""Benchmark: the ``mine`` stage on a large synthetic corpus, time and peak memory.

Builds a BEIR folder of ``--docs`` synthetic documents (topic words, product
codes, filler) with ``--queries`` train queries (each a few words and the code
of its document) plus small dev/test splits, then, each in a fresh process so
peak RSS is the stage's own:

1. ``domainfit`` ``run_mine`` with sources dense + BM25 + random (4 negatives,
   rank window 10..100, relative margin 0.05, curriculum, dataset written);
2. ``sentence_transformers.util.mine_hard_negatives`` on the same pairs and
   corpus (dense only, same window and margin, 4 negatives, n-tuple output).

Both use the same encoder: a ``StaticEmbedding`` built from the packaged
MiniLM's token embeddings (a real sentence-transformers model, ~100x faster to
encode than the transformer), so the run measures mining (search, filters,
memory) rather than encoder throughput; ``--model minilm`` uses the full
transformer instead. Peak RSS must stay under 4 GB for domainfit.

Results go to ``bench/results/mine.json`` and a table on stdout.

Usage: python bench/bench_mine.py [--docs 100000] [--queries 10000] [--model static|minilm]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYLLABLES = ["ka", "lo", "mi", "ne", "tor", "vel", "zan", "qu", "rim", "sol", "dex", "ba", "fu", "gri", "hap", "ix"]
FILLER = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "for",
    "with",
    "on",
    "is",
    "are",
    "be",
    "this",
    "that",
    "from",
    "by",
    "as",
    "at",
    "or",
    "an",
    "it",
]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def build_corpus(root: Path, n_docs: int, n_queries: int, seed: int = 7) -> None:
    """Write a BEIR folder: corpus.jsonl, queries.jsonl, qrels/{train,dev,test}.tsv."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng, 6000)
    topics = [rng.sample(vocab, 40) for _ in range(max(10, n_docs // 200))]
    root.mkdir(parents=True, exist_ok=True)
    docs: list[tuple[str, list[str], str]] = []
    with (root / "corpus.jsonl").open("w") as out:
        for i in range(n_docs):
            topic = topics[rng.randrange(len(topics))]
            words = rng.sample(topic, 12) + rng.sample(vocab, 6) + rng.choices(FILLER, k=14)
            rng.shuffle(words)
            code = f"{rng.choice('ABCDEFGH')}{rng.choice('XYZ')}-{i:06d}"
            title = " ".join(rng.sample(topic, 3)).title()
            text = " ".join(words[:16]) + f" {code} " + " ".join(words[16:])
            docs.append((f"d{i}", words, code))
            out.write(json.dumps({"_id": f"d{i}", "title": title, "text": text}) + "\n")
    n_eval = max(10, n_queries // 50)
    picked = rng.sample(range(n_docs), n_queries + 2 * n_eval)
    splits = {"train": picked[:n_queries], "dev": picked[n_queries : n_queries + n_eval], "test": picked[-n_eval:]}
    (root / "qrels").mkdir(exist_ok=True)
    with (root / "queries.jsonl").open("w") as queries:
        for split, doc_indexes in splits.items():
            with (root / "qrels" / f"{split}.tsv").open("w") as qrels:
                qrels.write("query-id\tcorpus-id\tscore\n")
                for n, index in enumerate(doc_indexes):
                    doc_id, words, code = docs[index]
                    content = [w for w in words if w not in FILLER]
                    text = " ".join(rng.sample(content, 3)) + (f" {code}" if rng.random() < 0.5 else "")
                    qid = f"{split}-{n}"
                    queries.write(json.dumps({"_id": qid, "text": text}) + "\n")
                    qrels.write(f"{qid}\t{doc_id}\t1\n")


def load_encoder(kind: str):
    """Return the benchmark's encoder: static token embeddings of MiniLM, or MiniLM itself."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

    from domainfit.core.models import load_bi_encoder

    minilm = load_bi_encoder(max_seq_length=64)
    if kind == "minilm":
        return minilm
    transformer = minilm[0]
    weights = transformer.auto_model.embeddings.word_embeddings.weight.detach().cpu().numpy()
    static = StaticEmbedding(transformer.tokenizer, embedding_weights=weights)
    return SentenceTransformer(modules=[static, Normalize()], device="cpu")


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_domainfit(data: Path, kind: str) -> dict:
    """Run domainfit's mine stage in this (fresh) process; return seconds, counts and peak RSS."""
    from domainfit.core.progress import set_quiet
    from domainfit.core.workspace import Workspace
    from domainfit.mine.config import MineConfig
    from domainfit.stages.mine import run_mine

    set_quiet(True)
    model = load_encoder(kind)
    rss_model = peak_rss_mib()
    config = MineConfig(sources=["dense", "bm25", "random"], negatives=4, synthetic=False, batch_size=256)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_mine(data, Workspace(Path(tmp) / "ws"), config, bi_encoder=model)
        seconds = time.perf_counter() - start
        summary = result.to_json()
    return {
        "seconds": seconds,
        "stage_seconds": summary.get("seconds"),
        "examples": summary.get("n_examples"),
        "negatives_per_source": summary.get("negatives_per_source"),
        "peak_rss_mib": peak_rss_mib(),
        "rss_after_model_mib": rss_model,
    }


def child_sentence_transformers(data: Path, kind: str) -> dict:
    """Run ``mine_hard_negatives`` on the same train pairs and corpus; return seconds and peak RSS."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    from domainfit.data.beir import load_beir

    model = load_encoder(kind)
    dataset = load_beir(data)
    corpus = dataset.corpus
    queries = dataset.queries
    anchors, positives = [], []
    for qid, judged in dataset.qrels["train"].items():
        for doc_id in judged:
            anchors.append(queries[qid].text)
            positives.append(corpus[doc_id].full_text())
    texts = [doc.full_text() for doc in corpus.values()]
    start = time.perf_counter()
    mined = mine_hard_negatives(
        Dataset.from_dict({"anchor": anchors, "positive": positives}),
        model,
        corpus=texts,
        range_min=10,
        range_max=100,
        relative_margin=0.05,
        num_negatives=4,
        sampling_strategy="random",
        output_format="n-tuple",
        batch_size=256,
        verbose=False,
    )
    return {"seconds": time.perf_counter() - start, "examples": len(mined), "peak_rss_mib": peak_rss_mib()}


def run_child(which: str, data: Path, kind: str) -> dict:
    """Run one side in a fresh interpreter and return its JSON result."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--data", str(data), "--model", kind],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"{which} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Build the corpus, run both sides, print and save the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--model", choices=["static", "minilm"], default="static")
    parser.add_argument("--skip-st", action="store_true", help="skip the sentence-transformers run")
    parser.add_argument("--child", choices=["domainfit", "st"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "mine.json")
    args = parser.parse_args()
    if args.child:
        fn = child_domainfit if args.child == "domainfit" else child_sentence_transformers
        print(json.dumps(fn(args.data, args.model)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "beir"
        start = time.perf_counter()
        build_corpus(data, args.docs, args.queries)
        print(f"corpus: {args.docs:,} documents, {args.queries:,} train queries ({time.perf_counter() - start:.1f} s)")
        ours = run_child("domainfit", data, args.model)
        print(f"domainfit mine: {ours['seconds']:.1f} s, peak RSS {ours['peak_rss_mib']:.0f} MiB")
        theirs = None if args.skip_st else run_child("st", data, args.model)
        if theirs:
            print(f"mine_hard_negatives: {theirs['seconds']:.1f} s, peak RSS {theirs['peak_rss_mib']:.0f} MiB")
    result = {
        "docs": args.docs,
        "queries": args.queries,
        "encoder": args.model,
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "domainfit": ours,
        "sentence_transformers": theirs,
        "peak_rss_under_4gb": ours["peak_rss_mib"] < 4096,
    }
    if theirs:
        result["time_ratio"] = theirs["seconds"] / ours["seconds"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
