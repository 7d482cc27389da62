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
  (`domainfit.budget.probe.median_step` on a sample of the triples) / actual.

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

from domainfit.budget.probe import median_step, sample, step_estimate
from domainfit.config import Config
from domainfit.core.models import load_bi_encoder
from domainfit.core.progress import set_quiet
from domainfit.core.workspace import Workspace
from domainfit.data.beir import load_beir
from domainfit.data.demo import demo_path
from domainfit.stages.plan import _labelled_triples, _train_window
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig

GROUPINGS = ("length", "none")


def write_triples(triples: list[tuple[str, str, str]], path: Path) -> Path:
    """Write the triples as a JSONL pair file (query, positive, negative)."""
    rows = (json.dumps({"query": q, "positive": p, "negative": n}) for q, p, n in triples)
    path.write_text("".join(row + "\n" for row in rows))
    return path


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
            "ungrouped_probe_to_actual": old / actual if actual else None,
            "load_average": os.getloadavg()[0],
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
