"""Training examples of the ``mine`` dataset by origin, and a cap on the synthetic share.

``mine`` writes its dataset (anchor, positive, negative_1..n) and, row by row,
``negatives.jsonl`` with each row's ``origin``: ``labelled`` (a train qrels
pair) or ``synthetic`` (a generated query). Reading both lets one mined
dataset serve every synthetic share a recipe asks for: the labelled rows are
always kept, the synthetic rows are a seeded sample sized so they make at most
``share`` of the examples.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.train.data import Example, examples_from_pairs

LABELLED, SYNTHETIC = "labelled", "synthetic"


@dataclass
class MinedExamples:
    """Examples of a mined dataset with the origin of each (same order as the dataset's rows)."""

    examples: list[Example]
    origins: list[str]

    def counts(self) -> dict[str, int]:
        """Return how many examples each origin has."""
        out: dict[str, int] = {}
        for origin in self.origins:
            out[origin] = out.get(origin, 0) + 1
        return out

    def with_share(self, share: float | None, seed: int = 13) -> list[Example]:
        """Return the labelled examples plus synthetic ones making at most ``share`` of the result.

        ``share`` None (or 1.0, or no labelled example) keeps every example;
        0.0 keeps the labelled examples only. The synthetic sample is seeded and
        keeps the dataset's order.
        """
        return [self.examples[i] for i in share_indices(self.origins, share, seed)]


def share_indices(origins: Sequence[str], share: float | None, seed: int = 13) -> list[int]:
    """Return the row indices kept for a synthetic ``share`` (see `MinedExamples.with_share`)."""
    labelled = [i for i, o in enumerate(origins) if o != SYNTHETIC]
    synthetic = [i for i, o in enumerate(origins) if o == SYNTHETIC]
    if share is None or share >= 1 or not labelled:
        return list(range(len(origins)))
    allowed = int(len(labelled) * share / (1 - share)) if share > 0 else 0
    kept = set(synthetic) if len(synthetic) <= allowed else set(random.Random(seed).sample(synthetic, allowed))
    return [i for i in range(len(origins)) if origins[i] != SYNTHETIC or i in kept]


def read_origins(mine_dir: Path, n_rows: int) -> list[str]:
    """Return each dataset row's origin from ``negatives.jsonl`` (all ``labelled`` when it is absent or short)."""
    path = mine_dir / "negatives.jsonl"
    origins = [LABELLED] * n_rows
    if not path.is_file():
        return origins
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                row = record.get("row")
                if isinstance(row, int) and 0 <= row < n_rows:
                    origins[row] = str(record.get("origin", LABELLED))
    return origins


def mined_examples(mine_dir: Path, text: TextConfig = DEFAULT_TEXT) -> MinedExamples:
    """Read the ``mine`` stage's dataset (texts prepared under ``text``) and the origin of each of its rows."""
    examples = examples_from_pairs(mine_dir / "dataset", text)
    return MinedExamples(examples, read_origins(mine_dir, len(examples)))
