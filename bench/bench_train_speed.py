"""Training speed on CPU: length-grouped batches and torch threads against the default, in one run on the demo.

Every variant trains MiniLM with ``domainfit train`` (full fine-tuning, MNRL) on
the same seeded sample of train pairs for the same steps; measured per variant:

- median optimiser step seconds (the trainer's steps, warm-up step left out;
  evaluation and saving excluded) and steps/s, as a ratio to the default;
- padded tokens per epoch that each batch sampler's batches cost (tokenizer
  counts at the training window), the cause of a length-grouping speed-up;
- NDCG@10 on the demo's test split and lift over MiniLM zero-shot with the
  paired p-value, so a speed change that costs quality shows.

Variants: ``default`` (no-duplicates batches, torch's threads), ``length``
(`domainfit.train.speed.length_grouped_batches`), ``threads-1`` (one intra-op
thread), ``length+threads-1``. Ratios only, never timed assertions. Run niced
on an otherwise idle machine. Usage::

    python bench/bench_train_speed.py --out bench/results/train_speed.json
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

import torch
from bench_levels import dense_run, sampled_corpus, write_pairs

from domainfit.core.models import load_bi_encoder
from domainfit.core.progress import set_quiet
from domainfit.core.workspace import Workspace
from domainfit.data.beir import load_beir
from domainfit.data.demo import demo_path
from domainfit.evaluation.metrics import evaluate
from domainfit.evaluation.significance import compare_runs
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig
from domainfit.train.speed import grouped_batches

#: Variant name -> the TrainConfig settings it changes.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "length": {"batch_grouping": "length"},
    "threads-1": {"threads": 1},
    "length+threads-1": {"batch_grouping": "length", "threads": 1},
}


def padded_tokens(pairs: Path, batch: int, window: int, seed: int) -> dict[str, Any]:
    """Tokens each sampler's epoch-0 batches pad to (query and positive columns), and the tokens of the texts."""
    rows = [json.loads(line) for line in pairs.read_text().splitlines() if line.strip()]
    tokenizer = load_bi_encoder().tokenizer
    counts = {
        column: [min(window, len(ids)) for ids in tokenizer([r[column] for r in rows])["input_ids"]]
        for column in ("query", "positive")
    }
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    plain = [order[i : i + batch] for i in range(0, len(order), batch)]
    lengths = [len(r["query"]) + len(r["positive"]) for r in rows]
    grouped = grouped_batches(lengths, [(r["query"], r["positive"]) for r in rows], batch, seed)

    def cost(batches: list[list[int]]) -> int:
        return sum(len(b) * max(counts[c][i] for i in b) for b in batches for c in counts)

    real = sum(sum(v) for v in counts.values())
    return {
        "text_tokens": real,
        "default_padded": cost(plain),
        "length_padded": cost(grouped),
        "length_to_default": cost(grouped) / cost(plain),
    }


def main() -> None:
    """Train every variant, evaluate it, write the JSON record."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_speed.json"))
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--corpus", type=int, default=0, help="documents searched (0: the whole corpus)")
    args = parser.parse_args()
    set_quiet(True)
    started = time.perf_counter()
    data = demo_path()
    dataset = load_beir(data)
    tmp_root = Path(tempfile.mkdtemp(prefix="bench-train-speed-"))
    pairs = write_pairs(dataset, args.batch * args.steps, tmp_root / "pairs.jsonl")
    searched = sampled_corpus(dataset, args.corpus) if args.corpus else dataset
    record: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch_threads": torch.get_num_threads()},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "pairs": args.batch * args.steps,
        "evaluated_documents": len(searched.corpus),
        "padding": padded_tokens(pairs, args.batch, args.window, 13),
        "complete": False,
    }
    print(json.dumps({"padding": record["padding"]}), flush=True)
    qrels = dataset.qrels["test"]
    queries = {q: dataset.queries[q].text for q in qrels}
    cache = tmp_root / "cache"
    base_run, _ = dense_run("sentence-transformers/all-MiniLM-L6-v2", searched, queries, cache)
    record["minilm_ndcg@10"] = evaluate(qrels, base_run, ["ndcg@10"])["ndcg@10"]
    variants: dict[str, Any] = {}
    for name in args.variants.split(","):
        cfg = TrainConfig(
            max_steps=args.steps, batch_size=args.batch, max_seq_length=args.window, eval_steps=args.steps,
            save_steps=args.steps, early_stopping_patience=None, eval_corpus="sample", eval_max_corpus=300,
            dataset=str(pairs), **VARIANTS[name],
        )  # fmt: skip
        ws = Workspace(tmp_root / f"ws-{name}")
        result = run_train(data, ws, cfg, force=True)
        run, _ = dense_run(str(ws.stage_dir("train") / "model"), searched, queries, cache)
        ndcg = evaluate(qrels, run, ["ndcg@10"])["ndcg@10"]
        test = compare_runs(qrels, {"minilm": base_run, name: run}, metrics=["ndcg@10"]).to_dict()
        variants[name] = {
            "step_seconds": result.step_seconds,
            "steps_per_second": 1 / result.step_seconds if result.step_seconds else None,
            "train_seconds": result.seconds,
            "batch_grouping": result.batch_grouping,
            "ndcg@10": ndcg,
            "lift_vs_minilm": ndcg - record["minilm_ndcg@10"],
            "p_value": next(c["p_value"] for c in test["comparisons"] if c["metric"] == "ndcg@10"),
        }
        shutil.rmtree(ws.root / "train-checkpoints", ignore_errors=True)
        print(json.dumps({name: variants[name]}), flush=True)
        record["variants"] = variants
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")  # what is measured so far
    default = variants.get("default", {}).get("steps_per_second")
    if default:
        record["speed_vs_default"] = {
            name: v["steps_per_second"] / default for name, v in variants.items() if v["steps_per_second"]
        }
        record["ndcg@10_vs_default"] = {
            name: v["ndcg@10"] - variants["default"]["ndcg@10"] for name, v in variants.items()
        }
    shutil.rmtree(tmp_root, ignore_errors=True)
    record["seconds"] = time.perf_counter() - started
    record["complete"] = True
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"speed_vs_default": record.get("speed_vs_default")}))


if __name__ == "__main__":
    main()
