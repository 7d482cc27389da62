"""Benchmark: encoding on CPU, bare ``SentenceTransformer.encode`` (torch float32) against domainfit's fast paths.

Data: the first 2,000 passages of the bundled demo corpus (title + text, as
domainfit encodes documents); the model: the packaged all-MiniLM-L6-v2.
Each fast path (``onnx``, ``onnx-int8``, ``openvino``) is prepared by
`domainfit.retrieval.backends` (exported once into a cache folder) and timed through
the same ``SentenceTransformer.encode`` call as torch (batch 32, normalised), so the
ratio is the runtime's alone. The passages are timed in blocks, and within each
block every path runs once, in rotating order, so a change in the machine's load
during the run falls on all of them alike. Per path: passages per second, the
speed-up over torch, the cosine to torch float32 of every passage (lowest, 1st
percentile, mean), and NDCG@10 on the demo's test split (the whole corpus and the
test queries encoded by that path, exact search) with its retention of torch's.
A path counts as passing when every cosine is >= 0.99 and NDCG@10 is within 1%.

Results go to ``bench/results/encode.json`` and a table on stdout.

Usage: python bench/bench_encode.py [--passages 2000] [--block 250] [--batch-size 32] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from domainfit.core.models import load_bi_encoder
from domainfit.data.beir import load_beir
from domainfit.data.demo import demo_path
from domainfit.evaluation.metrics import evaluate
from domainfit.retrieval.backends.choose import build_backend, failure_reason
from domainfit.retrieval.backends.export import weights_fingerprint
from domainfit.retrieval.dense import exact_search

FAST = ("onnx", "onnx-int8", "openvino")
RESULTS = Path(__file__).parent / "results" / "encode.json"


def encode(model: Any, texts: list[str], batch_size: int) -> np.ndarray:
    """Encode normalised float32 vectors with the model's own ``encode``."""
    return np.asarray(
        model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ),
        dtype=np.float32,
    )


def ndcg(
    model: Any, doc_texts: list[str], doc_ids: list[str], queries: dict[str, str], qrels: Any, batch_size: int
) -> float:
    """NDCG@10 of exact search with ``model`` over the whole corpus for the judged queries."""
    docs = encode(model, doc_texts, batch_size)
    qids = list(queries)
    q = encode(model, [queries[i] for i in qids], batch_size)
    idx, scores = exact_search(q, docs, 100)
    run = {
        qid: {doc_ids[int(j)]: float(s) for j, s in zip(idx[r], scores[r], strict=True)} for r, qid in enumerate(qids)
    }
    return evaluate(qrels, run, ["ndcg@10"])["ndcg@10"]


def main() -> None:
    """Prepare the paths, time them block by block, check them, and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--block", type=int, default=250)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cache", type=Path, default=None, help="export cache (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    dataset = load_beir(demo_path())
    doc_ids = list(dataset.corpus)
    doc_texts = [dataset.corpus[d].full_text() for d in doc_ids]
    passages = doc_texts[: args.passages]
    qrels = dataset.qrels["test"]
    queries = {qid: dataset.queries[qid].text for qid in qrels}

    torch_model = load_bi_encoder()
    models: dict[str, Any] = {"torch": torch_model}
    failures: dict[str, str] = {}
    prepare: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = (args.cache or Path(scratch)) / weights_fingerprint(torch_model)
        for name in FAST:
            start = time.perf_counter()
            try:
                models[name] = build_backend(torch_model, name, folder)
            except Exception as exc:  # a path that does not work is reported, not fatal
                failures[name] = failure_reason(exc)
            prepare[name] = round(time.perf_counter() - start, 1)
        for model in models.values():
            encode(model, passages[:8], args.batch_size)  # warm-up
        seconds = dict.fromkeys(models, 0.0)
        vectors: dict[str, list[np.ndarray]] = {name: [] for name in models}
        names = list(models)
        for block, start in enumerate(range(0, len(passages), args.block)):
            texts = passages[start : start + args.block]
            for name in names[block % len(names) :] + names[: block % len(names)]:
                clock = time.perf_counter()
                vectors[name].append(encode(models[name], texts, args.batch_size))
                seconds[name] += time.perf_counter() - clock
            print(f"block {block + 1}: " + ", ".join(f"{n} {seconds[n]:.0f}s" for n in names), flush=True)
        stacked = {name: np.concatenate(parts) for name, parts in vectors.items()}
        scores = {
            name: ndcg(model, doc_texts, doc_ids, queries, qrels, args.batch_size) for name, model in models.items()
        }

    base = stacked["torch"]
    paths: dict[str, Any] = {}
    for name in names:
        cosines = np.sum(stacked[name] * base, axis=1)
        retention = scores[name] / scores["torch"] if scores["torch"] else None
        paths[name] = {
            "passages_per_second": round(len(passages) / seconds[name], 2),
            "seconds": round(seconds[name], 1),
            "speedup_vs_torch": round(seconds["torch"] / seconds[name], 2),
            "min_cosine": round(float(cosines.min()), 5),
            "p1_cosine": round(float(np.percentile(cosines, 1)), 5),
            "mean_cosine": round(float(cosines.mean()), 6),
            "texts_below_0.99": int((cosines < 0.99).sum()),
            "ndcg@10": round(scores[name], 4),
            "ndcg@10_retention": round(retention, 4) if retention is not None else None,
            "seconds_to_prepare": prepare.get(name),
        }
        paths[name]["passes"] = bool(
            name != "torch" and cosines.min() >= 0.99 and retention is not None and retention >= 0.99
        )
    passing = [n for n in FAST if n in paths and paths[n]["passes"]]
    fastest = max(passing, key=lambda n: paths[n]["speedup_vs_torch"]) if passing else None
    result = {
        "benchmark": "encode",
        "model": "sentence-transformers/all-MiniLM-L6-v2 (packaged)",
        "passages": len(passages),
        "queries": len(queries),
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "machine": {"cpus": __import__("os").cpu_count(), "processor": platform.processor() or platform.machine()},
        "paths": paths,
        "failed": failures,
        "fastest_passing": fastest,
        "fastest_speedup": paths[fastest]["speedup_vs_torch"] if fastest else None,
        "target": "fastest passing path >= 2x torch, every cosine >= 0.99, NDCG@10 within 1%",
        "meets_target": bool(fastest and paths[fastest]["speedup_vs_torch"] >= 2.0),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{'path':<10} {'pass/s':>8} {'x torch':>8} {'min cos':>8} {'ndcg@10':>8} {'retain':>7}")
    for name, row in paths.items():
        print(
            f"{name:<10} {row['passages_per_second']:>8} {row['speedup_vs_torch']:>8} {row['min_cosine']:>8} "
            f"{row['ndcg@10']:>8} {row['ndcg@10_retention']:>7}"
        )
    for name, why in failures.items():
        print(f"{name}: failed: {why}")


if __name__ == "__main__":
    main()
