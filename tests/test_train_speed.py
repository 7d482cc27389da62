"""Training speed on CPU: length-grouped batches without duplicates, thread settings, the measured step time."""

import random

import torch

from conftest import TINY_TRAIN as TINY
from domainfit.core.workspace import Workspace
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig
from domainfit.train.speed import (
    grouped_batches,
    length_grouped_batches,
    peak_rss_mib,
    torch_threads,
)


def _rows(n=300, seed=0):
    rng = random.Random(seed)
    lengths = [rng.choice([5, 20, 80, 400]) for _ in range(n)]
    texts = [(f"q{i}", f"doc {i % 40}") for i in range(n)]  # positives repeat: 40 distinct documents
    return lengths, texts


def _padding(batches, lengths):
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


def test_length_groups_cover_every_row_once_without_a_duplicate_text_and_pad_less():
    lengths, texts = _rows()
    batches = grouped_batches(lengths, texts, 16, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        seen = [t for i in batch for t in texts[i]]
        assert len(seen) == len(set(seen)) and len(batch) <= 16
    order = list(range(len(lengths)))
    random.Random(3).shuffle(order)
    plain = [order[i : i + 16] for i in range(0, len(order), 16)]
    assert _padding(batches, lengths) < 0.8 * _padding(plain, lengths)
    assert grouped_batches(lengths, texts, 16, seed=3) == batches  # seeded
    assert grouped_batches(lengths, texts, 16, seed=4) != batches  # a new order each epoch
    assert all(len(b) == 16 for b in grouped_batches(lengths, texts, 16, seed=3, drop_last=True))


def test_the_sampler_plugs_into_the_trainer_arguments_and_reshuffles_per_epoch():
    from datasets import Dataset

    lengths, texts = _rows(64)
    dataset = Dataset.from_dict({"anchor": [t[0] * n for t, n in zip(texts, lengths, strict=True)],
                                 "positive": [t[1] for t in texts]})  # fmt: skip
    sampler = length_grouped_batches(dataset, batch_size=8, drop_last=False, seed=1)
    first = list(sampler)
    assert len(sampler) == len(first) and sorted(i for b in first for i in b) == list(range(64))
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_a_length_grouped_one_thread_run_records_its_step_time_and_restores_threads(tmp_path, mini_beir):
    threads = torch.get_num_threads()
    cfg = TrainConfig(max_steps=2, batch_grouping="length", threads=1, **TINY)
    result = run_train(mini_beir, Workspace(tmp_path / "ws"), cfg)
    assert result.batch_grouping == "length" and result.steps == 2
    assert result.step_seconds is not None and result.step_seconds > 0
    memory = result.memory_mib
    assert memory is not None and 0 < memory["rss_at_start"] <= memory["peak_rss"] <= peak_rss_mib() + 0.1
    assert abs(memory["rise"] - (memory["peak_rss"] - memory["rss_at_start"])) <= 0.1 + 1e-9
    assert torch.get_num_threads() == threads
    with torch_threads(1) as used:
        assert used == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == threads


MEMORY_PROBE = """
import json
import numpy as np
from domainfit.train.speed import rss_mib, step_timer
timer = step_timer()
assert timer.memory() is None  # nothing measured before training ends
timer.on_train_begin(None, None, None)
before = rss_mib()
block = np.ones((300, 1024, 1024), dtype=np.uint8)  # 300 MiB, every page touched
held = rss_mib()
timer.on_train_end(None, None, None)
print(json.dumps({"before": before, "held": held, "memory": timer.memory()}))
"""


def test_the_step_timer_measures_the_memory_training_takes():
    """In a fresh process, as a training run is: a process that freed memory before may reuse it unseen."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    before, held, memory = seen["before"], seen["held"], seen["memory"]
    assert before is not None and held is not None and held - before > 290
    assert memory is not None and memory["rise"] > 290 and memory["peak_rss"] >= held - 1
