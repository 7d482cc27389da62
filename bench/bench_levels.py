"""Levels of effort on the demo corpus: step time, lift, zero re-indexing and static encoding speed, in one run.

Measured, all in this run on this machine:

- level 2 (top N layers) vs level 3 (full) optimiser step time on the same batches
  (MultipleNegativesRankingLoss, real steps; target: level 2 <= 0.6x level 3);
- NDCG@10 on the demo's test split, with lift over MiniLM zero-shot and the
  paired p-value, for full fine-tuning, top-layers, the query-side adapter and a
  static model, each trained by ``domainfit train --level ...`` on the same pairs
  (the train qrels) with the same step count;
- the adapter's documents re-embedded (must be 0: its document vectors are the
  base model's, read from the same embedding cache);
- static-model encoding speed vs MiniLM's torch path on the same passages
  (target >= 50x), and its NDCG@10 next to BM25 and MiniLM zero-shot.

Bounded: every trained level sees the same ``--pairs`` train pairs (a seeded
sample, written as a pair file) for ``--steps`` steps; ``--corpus`` > 0 evaluates
over the test-judged documents plus random others up to that many (easier than
the whole corpus: the record says which was used). Run niced. Usage::

    python bench/bench_levels.py --out bench/results/levels.json
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from domainfit.budget.probe import _train_steps
from domainfit.core.models import load_bi_encoder
from domainfit.core.progress import set_quiet
from domainfit.core.workspace import Workspace
from domainfit.data.beir import BeirDataset, load_beir
from domainfit.data.demo import demo_path
from domainfit.evaluation.metrics import evaluate
from domainfit.evaluation.significance import compare_runs
from domainfit.retrieval.dense import DenseRetriever
from domainfit.retrieval.lexical import BM25Retriever
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig
from domainfit.train.levels import freeze_below_top


def triples(dataset: BeirDataset, n: int, seed: int = 13) -> list[tuple[str, str, str]]:
    """(query, positive, random document) triples from the train qrels."""
    rng = random.Random(seed)
    ids = list(dataset.corpus)
    out = [
        (dataset.queries[q].text, dataset.corpus[d].full_text(), dataset.corpus[rng.choice(ids)].full_text())
        for q, docs in dataset.qrels["train"].items()
        for d, g in docs.items()
        if g > 0
    ]
    rng.shuffle(out)
    return out[:n]


def write_pairs(dataset: BeirDataset, n: int, path: Path) -> Path:
    """Write a seeded sample of ``n`` (query, positive) train pairs as a JSONL pair file."""
    rows = triples(dataset, n)
    path.write_text("".join(json.dumps({"query": q, "positive": p}) + "\n" for q, p, _ in rows))
    return path


def sampled_corpus(dataset: BeirDataset, n: int, seed: int = 13) -> BeirDataset:
    """The dataset with its corpus cut to the test-judged documents plus random others, ``n`` in all."""
    judged = {d for docs in dataset.qrels["test"].values() for d in docs}
    others = sorted(set(dataset.corpus) - judged)
    random.Random(seed).shuffle(others)
    keep = judged | set(others[: max(0, n - len(judged))])
    corpus = {d: doc for d, doc in dataset.corpus.items() if d in keep}
    return BeirDataset(corpus=corpus, queries=dataset.queries, qrels=dataset.qrels, root=dataset.root)


def step_times(dataset: BeirDataset, batch: int, window: int, steps: int, top: int) -> dict[str, Any]:
    """Median seconds per step of the full model and of the top-``top``-layers model on the same batches."""
    rows = triples(dataset, batch * steps)
    out: dict[str, Any] = {"batch": batch, "window": window, "timed_steps": steps - 1, "top_layers": top}
    for label in ("full", "top-layers"):
        model = load_bi_encoder()
        if label == "top-layers":
            out["frozen"] = freeze_below_top(model, top).to_json()
        times = _train_steps(model, rows, batch, window, steps)[1:]
        out[label] = {"median_seconds": sorted(times)[len(times) // 2], "seconds": times}
    out["ratio"] = out["top-layers"]["median_seconds"] / out["full"]["median_seconds"]
    return out


def dense_run(model: str, dataset: BeirDataset, queries: dict[str, str], cache: Path) -> tuple[Any, DenseRetriever]:
    """Index the corpus and search the test queries with one model (document vectors through the cache)."""
    dense = DenseRetriever(model, cache_dir=cache, max_seq_length=256)
    dense.index(dataset.corpus)
    return dense.search(queries, 100), dense


def cache_rows(cache: Path) -> int:
    """Vectors stored in the embedding cache (all models)."""
    return sum(len(p.read_text().split()) for p in cache.rglob("*.keys"))


def encode_speed(dataset: BeirDataset, static_model: str, n_minilm: int, n_static: int) -> dict[str, Any]:
    """Documents/s of MiniLM (torch, float32) and of the static model on the same passages (no cache)."""
    texts = [d.full_text() for d in dataset.corpus.values()]
    out: dict[str, Any] = {}
    for label, name, n in (("minilm_torch", None, n_minilm), ("static", static_model, n_static)):
        model = load_bi_encoder(name) if name else load_bi_encoder()
        sample = texts[:n]
        model.encode(sample[:8], batch_size=32, show_progress_bar=False)
        start = time.perf_counter()
        model.encode(sample, batch_size=32, show_progress_bar=False)
        seconds = time.perf_counter() - start
        out[label] = {"passages": len(sample), "seconds": seconds, "per_second": len(sample) / seconds}
    out["speedup"] = out["static"]["per_second"] / out["minilm_torch"]["per_second"]
    return out


def main() -> None:
    """Run every measurement and write the JSON record."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/levels.json"))
    parser.add_argument("--steps", type=int, default=20, help="training steps of each trained level")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--probe-steps", type=int, default=4, help="steps timed per model (the first is warm-up)")
    parser.add_argument("--top-layers", type=int, default=2)
    parser.add_argument("--static-source", default="distill", choices=["tokenlearn", "distill"])
    parser.add_argument("--static-learning-rate", type=float, default=None, help="default: [train]'s")
    parser.add_argument("--minilm-passages", type=int, default=300)
    parser.add_argument("--levels", default="full,top-layers,adapter,static")
    parser.add_argument("--pairs", type=int, default=0, help="train pairs every level trains on (0: all)")
    parser.add_argument("--corpus", type=int, default=0, help="documents searched (0: the whole corpus)")
    args = parser.parse_args()
    set_quiet(True)
    started = time.perf_counter()
    data = demo_path()
    dataset = full = load_beir(data)
    tmp_root = Path(tempfile.mkdtemp(prefix="bench-levels-"))
    pair_file = write_pairs(dataset, args.pairs, tmp_root / "pairs.jsonl") if args.pairs else None
    if args.corpus:
        dataset = sampled_corpus(dataset, args.corpus)
    record: dict[str, Any] = {"machine": {"python": platform.python_version(), "processor": platform.processor()}}
    record["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    record["steps"] = step_times(full, args.batch, args.window, args.probe_steps, args.top_layers)
    print(json.dumps({"step_ratio": record["steps"]["ratio"]}), flush=True)
    qrels = dataset.qrels["test"]
    queries = {q: dataset.queries[q].text for q in qrels}
    record["evaluated_documents"] = len(dataset.corpus)
    record["trained_pairs"] = args.pairs or "all train qrels"
    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        root = Path(tmp)
        cache = root / "cache"
        bm25 = BM25Retriever()
        bm25.index(dataset.corpus)
        runs = {"bm25": bm25.search(queries, 100)}
        runs["minilm"], base = dense_run("sentence-transformers/all-MiniLM-L6-v2", dataset, queries, cache)
        scores = {name: evaluate(qrels, run, ["ndcg@10"])["ndcg@10"] for name, run in runs.items()}
        levels: dict[str, Any] = {}
        for level in args.levels.split(","):
            ws = Workspace(root / f"ws-{level}")
            cfg = TrainConfig(
                level=level, max_steps=args.steps, batch_size=args.batch, max_seq_length=args.window,
                eval_steps=args.steps, save_steps=args.steps, early_stopping_patience=None,
                eval_corpus="sample", eval_max_corpus=300, top_layers=args.top_layers,
                static_source=args.static_source, adapter_epochs=20,
                **({"static_learning_rate": args.static_learning_rate} if args.static_learning_rate else {}),
                dataset=str(pair_file) if pair_file else None,
            )  # fmt: skip
            start = time.perf_counter()
            result = run_train(data, ws, cfg, force=True)
            trained = time.perf_counter() - start
            before = cache_rows(cache)
            model = str(ws.stage_dir("train") / "model")
            run, dense = dense_run(model, dataset, queries, cache)
            encoded = cache_rows(cache) - before
            ndcg = evaluate(qrels, run, ["ndcg@10"])["ndcg@10"]
            test = compare_runs(qrels, {"minilm": runs["minilm"], level: run}, metrics=["ndcg@10"]).to_dict()
            p = next(c["p_value"] for c in test["comparisons"] if c["metric"] == "ndcg@10")
            levels[level] = {
                "ndcg@10": ndcg,
                "lift_vs_minilm": ndcg - scores["minilm"],
                "p_value": p,
                "train_seconds": result.seconds,
                "train_wall_seconds": trained,
                "steps": result.steps,
                "dev_ndcg@10": [result.base_dev_ndcg10, result.best_dev_ndcg10],
                "new_vectors_encoded": encoded,
                "documents_reembedded": 0 if dense.fingerprint == base.fingerprint else len(dataset.corpus),
                "level_details": result.level_details,
            }
            print(
                json.dumps({level: {k: levels[level][k] for k in ("ndcg@10", "lift_vs_minilm", "p_value")}}), flush=True
            )
            record.update({"ndcg@10": scores, "levels": levels, "complete": False})
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(record, indent=2) + "\n")  # what is measured so far
            if level == "static":
                record["encode"] = encode_speed(dataset, model, args.minilm_passages, len(dataset.corpus))
                print(json.dumps({"static_speedup": record["encode"]["speedup"]}), flush=True)
    record["ndcg@10"] = scores
    record["levels"] = levels
    if "full" in levels and "adapter" in levels and levels["full"]["lift_vs_minilm"]:
        record["adapter_share_of_full_lift"] = levels["adapter"]["lift_vs_minilm"] / levels["full"]["lift_vs_minilm"]
    if "full" in levels and "top-layers" in levels and levels["full"]["lift_vs_minilm"]:
        record["top_layers_share_of_full_lift"] = (
            levels["top-layers"]["lift_vs_minilm"] / levels["full"]["lift_vs_minilm"]
        )
    record["targets"] = {
        "top_layers_step_ratio<=0.6": record["steps"]["ratio"] <= 0.6,
        "static_speedup>=50": record.get("encode", {}).get("speedup", 0) >= 50,
        "adapter_documents_reembedded==0": levels.get("adapter", {}).get("documents_reembedded") == 0,
    }
    shutil.rmtree(tmp_root, ignore_errors=True)
    record["seconds"] = time.perf_counter() - started
    record["complete"] = True
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["targets"]))


if __name__ == "__main__":
    main()
