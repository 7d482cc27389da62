"""Benchmark: a training step through ``domainfit train`` vs a bare sentence-transformers trainer script.

Both sides fine-tune the packaged MiniLM with MultipleNegativesRankingLoss on
the demo corpus's train-split (query, relevant document) pairs, with the same
batch size, sequence length, learning rate, warm-up, seed, no-duplicates
batch sampler and step count, no evaluation during training and one
checkpoint at the end. Each run is a fresh process (the two sides alternate,
``--repeats`` times each); the figure is the trainer's own ``train()`` time
divided by the steps, and the whole command's wall time is recorded too.

Ratio = bare seconds per step / domainfit seconds per step (>= 0.95 means
domainfit adds no meaningful overhead). Results go to
``bench/results/train.json`` and a table on stdout.

Usage: python bench/bench_train.py [--steps 10] [--batch 16] [--seq 128] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child_domainfit(steps: int, batch: int, seq: int, out: Path) -> dict:
    """Train through ``run_train`` (no dev split: evaluation off); return train seconds."""
    from domainfit.core.progress import set_quiet
    from domainfit.core.workspace import Workspace
    from domainfit.data.demo import demo_path
    from domainfit.stages.train import run_train
    from domainfit.train.config import TrainConfig

    set_quiet(True)
    cfg = TrainConfig(
        max_steps=steps,
        batch_size=batch,
        max_seq_length=seq,
        eval_split="none",
        save_steps=steps,
        early_stopping_patience=None,
    )
    result = run_train(demo_path(), Workspace(out / "ws"), cfg, force=True)
    return {"train_seconds": result.seconds, "steps": result.steps, "examples": result.train_examples}


def child_bare(steps: int, batch: int, seq: int, out: Path) -> dict:
    """The same training as a plain sentence-transformers script; return train seconds."""
    import csv
    import json as _json

    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from domainfit.core.models import resolve_model
    from domainfit.data.demo import demo_path

    root = demo_path()
    docs = {}
    with (root / "corpus.jsonl").open() as handle:
        for line in handle:
            d = _json.loads(line)
            docs[d["_id"]] = f"{d['title']}\n{d['text']}" if d.get("title") else d["text"]
    queries = {}
    with (root / "queries.jsonl").open() as handle:
        for line in handle:
            q = _json.loads(line)
            queries[q["_id"]] = q["text"]
    anchors, positives = [], []
    with (root / "qrels" / "train.tsv").open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if int(row["score"]) > 0:
                anchors.append(queries[row["query-id"]])
                positives.append(docs[row["corpus-id"]])
    train = Dataset.from_dict({"anchor": anchors, "positive": positives}).shuffle(seed=13)
    model = SentenceTransformer(str(resolve_model("sentence-transformers/all-MiniLM-L6-v2").path), device="cpu")
    model.max_seq_length = seq
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "ckpt"),
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=2e-5,
        warmup_steps=0.1,
        seed=13,
        save_strategy="steps",
        save_steps=steps,
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        dataloader_num_workers=0,
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=train, loss=MultipleNegativesRankingLoss(model, scale=20.0)
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    model.save(str(out / "model"))
    return {"train_seconds": seconds, "steps": int(trainer.state.global_step), "examples": len(train)}


def run_child(which: str, steps: int, batch: int, seq: int) -> dict:
    """Run one side in a fresh interpreter; return its result plus the command's wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--child", which, "--steps", str(steps), "--batch", str(batch)]
        cmd += ["--seq", str(seq), "--dir", tmp]
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if out.returncode:
        sys.exit(f"{which} run failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    result["seconds_per_step"] = result["train_seconds"] / result["steps"]
    return result


def main() -> None:
    """Alternate the two sides, print and save per-step times and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=["domainfit", "bare"])
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train.json")
    args = parser.parse_args()
    if args.child:
        fn = child_domainfit if args.child == "domainfit" else child_bare
        print(json.dumps(fn(args.steps, args.batch, args.seq, args.dir)))
        return
    runs: dict[str, list[dict]] = {"domainfit": [], "bare": []}
    for n in range(args.repeats):
        for which in ("bare", "domainfit") if n % 2 == 0 else ("domainfit", "bare"):
            result = run_child(which, args.steps, args.batch, args.seq)
            runs[which].append(result)
            print(
                f"{which:9s} {result['seconds_per_step']:.2f} s/step "
                f"(train {result['train_seconds']:.1f} s, command {result['wall_seconds']:.1f} s)"
            )
    ours = statistics.median(r["seconds_per_step"] for r in runs["domainfit"])
    bare = statistics.median(r["seconds_per_step"] for r in runs["bare"])
    summary = {
        "settings": {"steps": args.steps, "batch": args.batch, "max_seq_length": args.seq, "loss": "mnrl"},
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "runs": runs,
        "domainfit_seconds_per_step": ours,
        "bare_seconds_per_step": bare,
        "ratio": bare / ours,
        "domainfit_command_seconds": statistics.median(r["wall_seconds"] for r in runs["domainfit"]),
        "bare_command_seconds": statistics.median(r["wall_seconds"] for r in runs["bare"]),
    }
    print(f"seconds per step: bare {bare:.2f}, domainfit {ours:.2f}; ratio {bare / ours:.3f} (target >= 0.95)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
