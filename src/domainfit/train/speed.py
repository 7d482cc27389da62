"""Training speed on CPU: length-grouped batches without duplicates, torch thread settings, measured step time.

sentence-transformers 6.2 offers no length-grouped batch sampler (its
``BatchSamplers`` are the default, ``no_duplicates``, ``no_duplicates_hashed``
and ``group_by_label``), and transformers' ``group_by_length`` is not read by
its trainer. `length_grouped_batches` is a ``batch_sampler`` for the trainer
arguments: each epoch the rows are shuffled, cut into mega-batches of
``GROUP`` batches, each mega-batch sorted by text length, and batches are
filled in that order, skipping a row whose text is already in the batch (as
``no_duplicates`` does: MNRL's in-batch negatives must not hold a copy of
the positive); batch order is shuffled again. Batches of similar lengths pad
less, so a CPU step costs less.

`StepTimer` is a trainer callback recording each optimiser step's wall time
and the resident memory of training (`rss_mib`, `peak_rss_mib`);
`torch_threads` sets torch's intra-op threads for the length of a block.
"""

from __future__ import annotations

import contextlib
import random
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

#: Batches per mega-batch that are sorted by length (as transformers' LengthGroupedSampler).
GROUP = 50


def row_lengths(dataset: Any) -> list[int]:
    """Return each row's total text length in characters over its string columns (a cheap token-count proxy)."""
    columns = [c for c in dataset.column_names if c != "label"]
    data = {c: dataset[c] for c in columns}
    return text_lengths([tuple(data[c][i] for c in columns) for i in range(len(dataset))])


def text_lengths(rows: Sequence[Sequence[Any]]) -> list[int]:
    """Return each row's total length in characters over its string fields (the length batches are grouped by)."""
    return [sum(len(value) for value in row if isinstance(value, str)) for row in rows]


def grouped_batches(
    lengths: list[int], texts: list[tuple[str, ...]], batch_size: int, seed: int, drop_last: bool = False
) -> list[list[int]]:
    """Return batches of row indices: shuffled, grouped by length per mega-batch, no text twice in a batch.

    Inputs: each row's length, each row's texts (for the duplicate check), the
    batch size, the seed (one per epoch) and whether a short last batch is dropped.
    A row whose text is already in the open batch waits for the next one.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * GROUP
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        pending = sorted(order[start : start + span], key=lambda i: -lengths[i])
        while pending:
            batch: list[int] = []
            seen: set[str] = set()
            rest: list[int] = []
            for i in pending:
                if len(batch) < batch_size and not seen.intersection(texts[i]):
                    batch.append(i)
                    seen.update(texts[i])
                else:
                    rest.append(i)
            batches.append(batch)
            pending = rest
    if drop_last:
        batches = [b for b in batches if len(b) == batch_size]
    rng.shuffle(batches)
    return batches


def length_grouped_batches(
    dataset: Any,
    batch_size: int,
    drop_last: bool,
    valid_label_columns: list[str] | None = None,
    generator: Any = None,
    seed: int = 0,
) -> Any:
    """Batch sampler grouping rows of similar length, no duplicate text in a batch (``batch_sampler`` of the args)."""
    from sentence_transformers.base.sampler import DefaultBatchSampler

    lengths = row_lengths(dataset)
    columns = [c for c in dataset.column_names if c != "label"]
    data = {c: dataset[c] for c in columns}
    texts = [tuple(str(data[c][i]) for c in columns) for i in range(len(dataset))]

    class LengthGrouped(DefaultBatchSampler):
        """Yields `grouped_batches` of the epoch (seeded by ``seed + epoch``)."""

        def __iter__(self) -> Iterator[list[int]]:
            yield from grouped_batches(lengths, texts, self.batch_size, self.seed + self.epoch, self.drop_last)

        def __len__(self) -> int:
            return len(grouped_batches(lengths, texts, self.batch_size, self.seed + self.epoch, self.drop_last))

    return LengthGrouped(
        dataset, batch_size=batch_size, drop_last=drop_last, valid_label_columns=valid_label_columns,
        generator=generator, seed=seed,
    )  # fmt: skip


def rss_mib() -> float | None:
    """Return this process's resident set size now, in MiB (psutil; None where the platform does not say)."""
    import psutil

    try:
        return float(psutil.Process().memory_info().rss) / (1024 * 1024)
    except (psutil.Error, OSError):
        return None


def peak_rss_mib() -> float:
    """Return this process's peak resident set size so far, in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[int]:
    """Run a block with ``threads`` torch intra-op threads (0: leave torch's setting); yields the count in use."""
    import torch

    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def step_timer() -> Any:
    """Return a trainer callback recording each optimiser step's seconds in ``.seconds`` and training's memory."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall time from ``on_step_begin`` to ``on_step_end`` of every step (evaluation and saving excluded).

        Also the resident set when training begins (model loaded, data built) and
        the process's peak resident set before and after training (`memory`).
        """

        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._start = 0.0
            self._rss_start: float | None = None
            self._peak_before = 0.0
            self._peak_after = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._rss_start, self._peak_before = rss_mib(), peak_rss_mib()

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._peak_after = peak_rss_mib()

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.seconds.append(time.perf_counter() - self._start)

        def median(self) -> float | None:
            """Median seconds per step, the first (warm-up) step left out when there are others."""
            times = sorted(self.seconds[1:] or self.seconds)
            return times[len(times) // 2] if times else None

        def memory(self) -> dict[str, Any] | None:
            """Resident memory of training in MiB, or None before training ended or where psutil cannot read it.

            ``rss_at_start``: resident set when training began; ``peak_rss``: the
            process's peak after training; ``rise``: their difference (the memory
            of the batches, gradients and optimiser state); ``peak_in_training``:
            whether training set that peak (if not, ``rise`` is an upper bound).
            """
            if self._rss_start is None or not self._peak_after:
                return None
            return {
                "rss_at_start": round(self._rss_start, 1),
                "peak_rss": round(self._peak_after, 1),
                "rise": round(max(0.0, self._peak_after - self._rss_start), 1),
                "peak_in_training": self._peak_after > self._peak_before,
            }

    return StepTimer()
