"""The planner's training-step estimate against real training steps on the demo, per batch grouping, in one run.

Per grouping (``length``: `domainfit.train.speed.length_grouped_batches`, the
default; ``none``: the trainer's no-duplicates batches), measured in this run:

- the probe's estimate (`domainfit.budget.probe.step_estimate`: real steps on
  batches formed from a sample of the training triples as training forms
  them, seconds per padded token times the mean padded tokens of a batch);
- the median optimiser step seconds of a short real ``domainfit train`` run on
  the same triples (query, positive, one random negative, as the probe's), with
  that grouping, warm-up step left out;
- estimate / actual, and the estimate of the probe before it grouped batches
  (`domainfit.budget.probe.median_step` on a sample of the triples) / actual;
- the probe's rate at the median batch's padded tokens / actual: the trainer
  records a median step, the plan needs the mean one, and grouped batches'
  padded tokens are skewed (many batches at the window);
- for ``length``, the probe's rate at the median padded tokens of the batches the
  short run actually took (its data and sampler rebuilt): a short run's batches
  need not be typical of an epoch's.

The machine is shared: the probe runs before and after each training run and
the estimate is their mean (both kept, with the load average), so a change in
load during the run shows instead of passing for an estimation error.

The training triples and the window are the planner's (`domainfit.stages.plan`),
the batch is ``[train] batch_size``. Ratios only, never timed assertions. Run
niced. Usage::

    python bench/bench_probe_grouping.py --out bench/results/probe_grouping.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from domainfit.budget.probe import batch_padded_tokens, median_step, probe_batches, sample, step_estimate
from domainfit.config import Config
from domainfit.core.models import load_bi_encoder
from domainfit.core.progress import set_quiet
from domainfit.core.workspace import Workspace
from domainfit.data.beir import load_beir
from domainfit.data.demo import demo_path
from domainfit.data.truncation import token_lengths
from domainfit.stages.plan import _labelled_triples, _train_window
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig
from domainfit.train.data import examples_from_pairs, to_dataset
from domainfit.train.speed import GROUP, length_grouped_batches

GROUPINGS = ("length", "none")


def write_triples(triples: list[tuple[str, str, str]], path: Path) -> Path:
    """Write the triples as a JSONL pair file (query, positive, negative)."""
    rows = (json.dumps({"query": q, "positive": p, "negative": n}) for q, p, n in triples)
    path.write_text("".join(row + "\n" for row in rows))
    return path


def median_batch_tokens(triples: list[tuple[str, str, str]], batch: int, window: int, grouping: str, seed: int) -> int:
    """Padded tokens of the median full batch of the probe's sample (the trainer records a median step)."""
    rows = sample(triples, batch * GROUP, seed)
    tokenizer = load_bi_encoder().tokenizer
    columns = [token_lengths(tokenizer, [r[c] for r in rows]) for c in range(3)]
    full = [b for b in probe_batches(rows, batch, grouping, seed) if len(b) == batch]
    tokens = sorted(batch_padded_tokens(b, columns, window) for b in full)
    return tokens[len(tokens) // 2]


def trainer_step_tokens(pairs: Path, cfg: TrainConfig) -> list[int]:
    """Padded tokens of each batch the length-grouped trainer takes in its first ``cfg.max_steps`` steps.

    The trainer's data and sampler rebuilt as ``domainfit train`` builds them
    (the pair file's examples, shuffled with the seed; the sampler's epoch 0):
    a short run's batches need not be typical of an epoch's.
    """
    rows = to_dataset(examples_from_pairs(pairs), "ranking", max_negatives=cfg.max_negatives, seed=cfg.seed)
    tokenizer = load_bi_encoder().tokenizer
    columns = [token_lengths(tokenizer, rows[c]) for c in rows.column_names]
    batches = list(length_grouped_batches(rows, cfg.batch_size, False, seed=cfg.seed))[: cfg.max_steps]
    return [batch_padded_tokens(b, columns, cfg.max_seq_length) for b in batches]


def main() -> None:
    """Probe and train per grouping, write the JSON record."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/probe_grouping.json"))
    parser.add_argument("--steps", type=int, default=12, help="training steps of each real run")
    parser.add_argument("--probe-steps", type=int, default=4, help="steps the probe times (the first a warm-up)")
    parser.add_argument("--window", type=int, default=0, help="training window (0: the planner's choice)")
    parser.add_argument("--groupings", default=",".join(GROUPINGS))
    args = parser.parse_args()
    set_quiet(True)
    started = time.perf_counter()
    config = Config()
    batch, seed = config.train.batch_size, config.train.seed
    data = demo_path()
    dataset = load_beir(data)
    triples = _labelled_triples(dataset, config.train.train_split, seed)
    window = args.window or _train_window(dataset, config, triples)
    tmp_root = Path(tempfile.mkdtemp(prefix="bench-probe-grouping-"))
    pairs = write_triples(triples, tmp_root / "triples.jsonl")
    record: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch_threads": torch.get_num_threads()},
        "settings": {"steps": args.steps, "probe_steps": args.probe_steps, "batch": batch, "window": window},
        "training_triples": len(triples),
        "load_average_at_start": os.getloadavg()[0],
        "complete": False,
    }
    old = median_step(load_bi_encoder(), sample(triples, batch * args.probe_steps, seed), batch, window,
                      args.probe_steps)  # fmt: skip
    record["ungrouped_probe_seconds"] = old
    groupings: dict[str, Any] = {}
    for grouping in args.groupings.split(","):
        before = step_estimate(load_bi_encoder(), triples, batch, window, args.probe_steps, grouping=grouping,
                               seed=seed)  # fmt: skip
        cfg = TrainConfig(
            max_steps=args.steps, batch_size=batch, max_seq_length=window, eval_steps=args.steps,
            save_steps=args.steps, early_stopping_patience=None, eval_corpus="sample", eval_max_corpus=200,
            eval_max_queries=50, dataset=str(pairs), batch_grouping=grouping,
        )  # fmt: skip
        ws = Workspace(tmp_root / f"ws-{grouping}")
        result = run_train(data, ws, cfg, force=True)
        actual = result.step_seconds
        after = step_estimate(load_bi_encoder(), triples, batch, window, args.probe_steps, grouping=grouping,
                              seed=seed)  # fmt: skip
        estimate = (before.seconds + after.seconds) / 2
        median_tokens = median_batch_tokens(triples, batch, window, grouping, seed)
        rate = (before.seconds_per_token + after.seconds_per_token) / 2
        at_median = median_tokens * rate
        taken_record: dict[str, Any] = {}
        if grouping == "length":  # the steps the run took (warm-up left out): their median batch
            taken = sorted(trainer_step_tokens(pairs, cfg)[1:])
            middle = taken[len(taken) // 2]
            taken_record = {
                "run_median_step_padded_tokens": middle,
                "run_batches_estimate_to_actual": rate * middle / actual if actual else None,
            }
        groupings[grouping] = {
            "estimate_seconds": estimate,
            "estimate_before_seconds": before.seconds,
            "estimate_after_seconds": after.seconds,
            "estimate_padded_tokens": before.padded_tokens,
            "estimate_seconds_per_token": [before.seconds_per_token, after.seconds_per_token],
            "sampled": before.sampled,
            "actual_step_seconds": actual,
            "actual_batch_grouping": result.batch_grouping,
            "actual_steps": result.steps,
            "estimate_to_actual": estimate / actual if actual else None,
            "median_batch_padded_tokens": median_tokens,
            "estimate_at_median_batch_seconds": at_median,
            "median_batch_estimate_to_actual": at_median / actual if actual else None,
            "ungrouped_probe_to_actual": old / actual if actual else None,
            "load_average": os.getloadavg()[0],
            **taken_record,
        }
        shutil.rmtree(ws.root / "train-checkpoints", ignore_errors=True)
        print(json.dumps({grouping: groupings[grouping]}), flush=True)
        record["groupings"] = groupings
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")  # what is measured so far
    shutil.rmtree(tmp_root, ignore_errors=True)
    record["seconds"] = time.perf_counter() - started
    record["complete"] = True
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
