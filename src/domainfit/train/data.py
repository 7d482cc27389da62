"""Training examples: where they come from and how each loss wants them shaped.

Sources, in order of preference: an explicit pair file or saved dataset
(``train.dataset``), the ``mine`` stage's dataset in the workspace, or the
positives of the train split's qrels. Output: a Hugging Face ``Dataset`` whose
columns match the loss's layout (see `domainfit.train.losses`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from domainfit.core.errors import InputError
from domainfit.data.beir import BeirDataset
from domainfit.data.pairs import read_pairs
from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.train.losses import Layout

#: ``teacher(queries, documents) -> scores``, one score per (query, document) pair.
Teacher = Callable[[Sequence[str], Sequence[str]], Sequence[float]]


@dataclass
class Example:
    """One training example: anchor (query), positive text, hard-negative texts and an optional score.

    Every text is prepared on creation under ``settings`` (the ``[text]``
    section; not a field), whatever its source (qrels, pair files, saved
    datasets, generated queries), exactly as texts are at indexing and query time.
    """

    anchor: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    score: float | None = None
    settings: InitVar[TextConfig] = DEFAULT_TEXT

    def __post_init__(self, settings: TextConfig) -> None:
        """Prepare the texts."""
        self.anchor, self.positive = settings.prepare(self.anchor), settings.prepare(self.positive)
        self.negatives = settings.prepare_all(list(self.negatives))


def examples_from_qrels(dataset: BeirDataset, split: str, text: TextConfig = DEFAULT_TEXT) -> list[Example]:
    """(query, relevant document) examples from one split's qrels (grade > 0), no negatives, prepared under ``text``."""
    if split not in dataset.qrels:
        raise InputError(dataset.root or "-", 0, "split", f"no qrels/{split}.tsv to train on")
    out = []
    for qid, docs in dataset.qrels[split].items():
        for did, grade in docs.items():
            if grade > 0:
                out.append(Example(dataset.queries[qid].text, dataset.corpus[did].full_text(), settings=text))
    if not out:
        raise InputError(dataset.root or "-", 0, split, "no relevant (query, document) pairs to train on")
    return out


def examples_from_saved(path: Path, text: TextConfig = DEFAULT_TEXT) -> list[Example]:
    """Examples from a dataset saved with ``save_to_disk`` (columns anchor, positive, negative_1..n)."""
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        loaded = loaded["train"]
    columns = loaded.column_names
    if "anchor" not in columns or "positive" not in columns:
        raise InputError(path, 0, "-", f"dataset needs columns anchor and positive, has {', '.join(columns)}")
    negative_columns = sorted((c for c in columns if c.startswith("negative")), key=_negative_index)
    return [
        Example(row["anchor"], row["positive"], [row[c] for c in negative_columns if row[c]], row.get("score"), text)
        for row in loaded
    ]


def curriculum_examples(folder: Path, seed: int = 13, text: TextConfig = DEFAULT_TEXT) -> list[Example]:
    """Examples of every curriculum stage in ``stages.json`` order (easy first), shuffled within each stage."""
    import json

    stages = json.loads((folder / "stages.json").read_text())["stages"]
    out: list[Example] = []
    for number, stage in enumerate(stages):
        examples = examples_from_saved(folder / stage["name"], text)
        random.Random(seed + number).shuffle(examples)
        out += examples
    return out


def sequential_batches(
    dataset: Any,
    batch_size: int,
    drop_last: bool,
    valid_label_columns: list[str] | None = None,
    generator: Any = None,
    seed: int = 0,
) -> Any:
    """Batch sampler that keeps the dataset's order (the curriculum), for ``batch_sampler`` in the trainer args."""
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from torch.utils.data import SequentialSampler

    return DefaultBatchSampler(
        SequentialSampler(dataset),
        batch_size=batch_size,
        drop_last=drop_last,
        valid_label_columns=valid_label_columns,
        generator=generator,
        seed=seed,
    )


def _negative_index(column: str) -> int:
    """Sort key for ``negative``, ``negative_1``, ``negative_2`` ..."""
    tail = column.rpartition("_")[2]
    return int(tail) if tail.isdigit() else 0


def examples_from_pairs(path: Path, text: TextConfig = DEFAULT_TEXT) -> list[Example]:
    """Examples from a JSONL/CSV pair file or a saved dataset folder, prepared under ``text``."""
    if path.is_dir() and any((path / m).exists() for m in ("dataset_info.json", "dataset_dict.json")):
        return examples_from_saved(path, text)
    pairs = read_pairs(path, text)
    return [Example(p.query, p.positive, [p.negative] if p.negative else [], p.score, text) for p in pairs]


def _ranking_rows(examples: Sequence[Example], n_negatives: int) -> dict[str, list[Any]]:
    """Columns anchor, positive, negative_1..n (examples lacking negatives are dropped when n > 0)."""
    kept = [e for e in examples if len(e.negatives) >= n_negatives]
    rows: dict[str, list[Any]] = {"anchor": [e.anchor for e in kept], "positive": [e.positive for e in kept]}
    for i in range(n_negatives):
        rows[f"negative_{i + 1}"] = [e.negatives[i] for e in kept]
    return rows


def _pair_rows(examples: Sequence[Example], scored: bool) -> dict[str, list[Any]]:
    """Columns sentence1, sentence2, label: positives labelled 1 (or their score), negatives 0."""
    rows: dict[str, list[Any]] = {"sentence1": [], "sentence2": [], "label": []}
    for e in examples:
        pairs = [(e.positive, e.score if (scored and e.score is not None) else 1.0)]
        pairs += [(neg, 0.0) for neg in e.negatives[:1]]
        for text, label in pairs:
            rows["sentence1"].append(e.anchor)
            rows["sentence2"].append(text)
            rows["label"].append(float(label) if scored else int(label))
    return rows


def _margin_rows(examples: Sequence[Example], teacher: Teacher) -> dict[str, list[Any]]:
    """Columns query, positive, negative, label = teacher(q, pos) - teacher(q, neg)."""
    kept = [e for e in examples if e.negatives]
    if not kept:
        raise InputError("-", 0, "negatives", "margin-mse needs examples with hard negatives (run `domainfit mine`)")
    queries = [e.anchor for e in kept] * 2
    docs = [e.positive for e in kept] + [e.negatives[0] for e in kept]
    scores = list(teacher(queries, docs))
    n = len(kept)
    return {
        "query": [e.anchor for e in kept],
        "positive": [e.positive for e in kept],
        "negative": [e.negatives[0] for e in kept],
        "label": [float(scores[i] - scores[n + i]) for i in range(n)],
    }


def to_dataset(
    examples: Sequence[Example],
    layout: Layout,
    *,
    max_negatives: int = 1,
    teacher: Teacher | None = None,
    seed: int = 13,
    shuffle: bool = True,
) -> Any:
    """Shape examples for a loss layout and return a ``datasets.Dataset`` (shuffled unless ``shuffle`` is off)."""
    import datasets

    if layout == "ranking":
        available = min((len(e.negatives) for e in examples), default=0)
        rows = _ranking_rows(examples, min(max_negatives, available))
    elif layout == "triplet":
        rows = _ranking_rows(examples, 1)
        if not rows["anchor"]:
            raise InputError("-", 0, "negatives", "triplet loss needs hard negatives (run `domainfit mine`)")
    elif layout in ("pair-label", "pair-score"):
        rows = _pair_rows(examples, scored=layout == "pair-score")
    else:
        if teacher is None:
            raise ValueError("margin layout needs a teacher")
        rows = _margin_rows(examples, teacher)
    order = list(range(len(next(iter(rows.values())))))
    if shuffle:
        random.Random(seed).shuffle(order)
    return datasets.Dataset.from_dict({k: [v[i] for i in order] for k, v in rows.items()})
