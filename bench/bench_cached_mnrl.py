"""Large batches in small memory on CPU: ``cached-mnrl`` against plain MNRL, in one run on the demo.

Every variant trains MiniLM with ``domainfit train`` (full fine-tuning, the
demo's labelled train pairs, one epoch, window 128, length-grouped batches, the
same learning rate and seed, no dev evaluation during training) in its own
process, so that process's memory is the variant's:

- ``mnrl-16``: MultipleNegativesRankingLoss, batch 16 (the memory reference);
- ``mnrl-128``: MultipleNegativesRankingLoss, batch 128;
- ``cached-mnrl-128``: CachedMultipleNegativesRankingLoss (GradCache), batch
  128 in mini-batches of 16: the same in-batch negatives as ``mnrl-128``.

Measured per variant: optimiser steps, median step seconds, train seconds (the
trainer's loop and its final checkpoint, no evaluation), the process's peak
resident set and the rise of the resident set during training over the one when
training began (model loaded, data built: the memory of the batch, gradients and
optimiser state), NDCG@10 on the demo's test split with the lift over MiniLM
zero-shot and its paired p-value, and the paired p-value against ``mnrl-16``.
Ratios: cached-128's rise vs mnrl-128's and mnrl-16's, its train time vs
mnrl-128's, NDCG@10 of each large batch vs batch 16. Ratios only, never timed
assertions. Run niced on an otherwise idle machine (the record keeps the load
average). With ``--pairs 1024`` it took 23 minutes on 2 cores shared with another
benchmark (all 1,568 pairs: about 30, by the same step times). Usage::

    python bench/bench_cached_mnrl.py --pairs 1024 --out bench/results/cached_mnrl.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from bench_levels import dense_run, sampled_corpus, write_pairs

from domainfit.core.progress import set_quiet
from domainfit.core.workspace import Workspace
from domainfit.data.beir import load_beir
from domainfit.data.demo import demo_path
from domainfit.evaluation.metrics import evaluate
from domainfit.evaluation.significance import compare_runs
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig
from domainfit.train.speed import peak_rss_mib

#: A split the demo does not have: the trainer then builds no dev evaluator, so only training is timed.
NO_DEV = "none"


def variants(small: int, large: int, mini: int) -> dict[str, dict[str, Any]]:
    """Variant name -> the TrainConfig settings it sets (loss, batch, GradCache mini-batch)."""
    return {
        f"mnrl-{small}": {"loss": "mnrl", "batch_size": small},
        f"mnrl-{large}": {"loss": "mnrl", "batch_size": large},
        f"cached-mnrl-{large}": {"loss": "cached-mnrl", "batch_size": large, "mini_batch_size": mini},
    }


def train_child(settings: dict[str, Any], workspace: Path, out: Path) -> None:
    """Train one variant in this process and write what it measured as JSON to ``out``."""
    set_quiet(True)
    start = time.perf_counter()
    result = run_train(demo_path(), Workspace(workspace), TrainConfig(**settings), force=True)
    record = {
        "steps": result.steps,
        "train_examples": result.train_examples,
        "step_seconds": result.step_seconds,
        "train_seconds": result.seconds,
        "run_train_wall_seconds": time.perf_counter() - start,
        "memory_mib": result.memory_mib,
        "process_peak_rss_mib": peak_rss_mib(),
        "batch_grouping": result.batch_grouping,
        "torch_threads": torch.get_num_threads(),
    }
    out.write_text(json.dumps(record) + "\n")


def run_variant(name: str, settings: dict[str, Any], root: Path) -> dict[str, Any]:
    """Train one variant in a fresh Python process; return its record and its model folder."""
    workspace, out = root / f"ws-{name}", root / f"{name}.json"
    command = [sys.executable, __file__, "--child", json.dumps(settings), "--workspace", str(workspace)]
    subprocess.run([*command, "--child-out", str(out)], check=True)
    record = json.loads(out.read_text())
    record["model"] = str(Workspace(workspace).stage_dir("train") / "model")
    shutil.rmtree(workspace / "train-checkpoints", ignore_errors=True)
    return record


def p_value(qrels: Any, runs: dict[str, Any]) -> float:
    """Paired t-test p-value of NDCG@10 of the second run against the first."""
    test = compare_runs(qrels, runs, metrics=["ndcg@10"]).to_dict()
    return float(next(c["p_value"] for c in test["comparisons"] if c["metric"] == "ndcg@10"))


def ratios(measured: dict[str, Any], small: str, large: str, cached: str) -> dict[str, Any]:
    """The comparisons the record is for: cached's memory rise and time vs plain MNRL, NDCG@10 vs the small batch."""
    have = [n for n in (small, large, cached) if n in measured]
    out: dict[str, Any] = {}
    rise: dict[str, Any] = {n: (measured[n].get("memory_mib") or {}).get("rise") for n in have}
    if rise.get(cached) and rise.get(large):
        out[f"rise_{cached}_vs_{large}"] = rise[cached] / rise[large]
    if rise.get(cached) and rise.get(small):
        out[f"rise_{cached}_vs_{small}"] = rise[cached] / rise[small]
    if cached in measured and large in measured:
        out[f"train_seconds_{cached}_vs_{large}"] = measured[cached]["train_seconds"] / measured[large]["train_seconds"]
        out[f"step_seconds_{cached}_vs_{large}"] = measured[cached]["step_seconds"] / measured[large]["step_seconds"]
    for name in (large, cached):
        if name in measured and small in measured:
            out[f"ndcg@10_{name}_minus_{small}"] = measured[name]["ndcg@10"] - measured[small]["ndcg@10"]
            out[f"ndcg@10_{name}_vs_{small}"] = measured[name]["ndcg@10"] / measured[small]["ndcg@10"]
    return out


def parse_args() -> argparse.Namespace:
    """The command line (``--child`` is the internal per-variant mode)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/cached_mnrl.json"))
    parser.add_argument("--pairs", type=int, default=0, help="train pairs, a seeded sample (0: all the train qrels)")
    parser.add_argument("--small-batch", type=int, default=16)
    parser.add_argument("--large-batch", type=int, default=128)
    parser.add_argument("--mini-batch", type=int, default=16, help="cached-mnrl: GradCache mini-batch size")
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--variants", default="", help="comma-separated variant names (default: all three)")
    parser.add_argument("--corpus", type=int, default=0, help="documents searched (0: the whole corpus)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    """Train every variant in its own process, evaluate it, write the JSON record."""
    args = parse_args()
    if args.child:
        train_child(json.loads(args.child), args.workspace, args.child_out)
        return
    set_quiet(True)
    started = time.perf_counter()
    data = demo_path()
    dataset = load_beir(data)
    tmp_root = Path(tempfile.mkdtemp(prefix="bench-cached-mnrl-"))
    pairs = write_pairs(dataset, args.pairs or sys.maxsize, tmp_root / "pairs.jsonl")
    n_pairs = len(pairs.read_text().splitlines())
    searched = sampled_corpus(dataset, args.corpus) if args.corpus else dataset
    table = variants(args.small_batch, args.large_batch, args.mini_batch)
    chosen = [v for v in args.variants.split(",") if v] or list(table)
    common = {
        "max_seq_length": args.window, "learning_rate": args.learning_rate, "epochs": 1.0, "max_steps": -1,
        "eval_split": NO_DEV, "save_steps": 100_000, "early_stopping_patience": None, "dataset": str(pairs),
    }  # fmt: skip
    record: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(),
            "load_average_at_start": os.getloadavg(),  # other work on the machine slows every variant
        },
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if "child" not in k},
        "train": {k: v for k, v in common.items() if k != "dataset"},
        "pairs": n_pairs,
        "evaluated_documents": len(searched.corpus),
        "complete": False,
    }
    qrels = dataset.qrels["test"]
    queries = {q: dataset.queries[q].text for q in qrels}
    cache = tmp_root / "cache"
    base_run, _ = dense_run("sentence-transformers/all-MiniLM-L6-v2", searched, queries, cache)
    record["minilm_ndcg@10"] = evaluate(qrels, base_run, ["ndcg@10"])["ndcg@10"]
    small = f"mnrl-{args.small_batch}"
    measured: dict[str, Any] = {}
    runs: dict[str, Any] = {}
    for name in chosen:
        settings = {**common, **table[name]}
        entry = run_variant(name, settings, tmp_root)
        runs[name], _ = dense_run(entry.pop("model"), searched, queries, cache)
        entry["ndcg@10"] = evaluate(qrels, runs[name], ["ndcg@10"])["ndcg@10"]
        entry["lift_vs_minilm"] = entry["ndcg@10"] - record["minilm_ndcg@10"]
        entry["p_value_vs_minilm"] = p_value(qrels, {"minilm": base_run, name: runs[name]})
        if name != small and small in runs:
            entry[f"p_value_vs_{small}"] = p_value(qrels, {small: runs[small], name: runs[name]})
        measured[name] = {"settings": table[name], **entry}
        print(json.dumps({name: entry}), flush=True)
        record["variants"] = measured
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")  # what is measured so far
    large, cached = f"mnrl-{args.large_batch}", f"cached-mnrl-{args.large_batch}"
    record["ratios"] = ratios(measured, small, large, cached)
    shutil.rmtree(tmp_root, ignore_errors=True)
    record["seconds"] = time.perf_counter() - started
    record["machine"]["load_average_at_end"] = os.getloadavg()
    record["complete"] = True
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"ratios": record["ratios"]}))


if __name__ == "__main__":
    main()
