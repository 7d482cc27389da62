"""Curriculum: order mined examples from easy to hard negatives, in stages a trainer consumes in turn.

Difficulty of one example is how close its negatives come to its positive
under the base model: ``mean(negative similarities) - positive similarity``
(cosines, so it lies in [-2, 2]; higher is harder). Random and far BM25
negatives sit well below the positive (easy); dense near-misses sit just below
it (hard). Stages split the examples sorted by difficulty into consecutive
shares (by default three equal ones: ``easy``, ``medium``, ``hard``), so every
example of a stage is at least as hard as every example of the stage before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_STAGES: tuple[str, ...] = ("easy", "medium", "hard")


def difficulty(positive_score: float, negative_scores: Sequence[float]) -> float:
    """Return ``mean(negative_scores) - positive_score`` (higher = harder); needs at least one negative."""
    if not negative_scores:
        raise ValueError("difficulty needs at least one negative score")
    return float(np.mean(np.asarray(negative_scores, dtype=np.float64)) - positive_score)


@dataclass
class Stage:
    """One curriculum stage: its name, its rows (easiest first) and their difficulty range and mean."""

    name: str
    rows: list[int]
    difficulty_min: float | None
    difficulty_max: float | None
    difficulty_mean: float | None

    def summary(self) -> dict[str, object]:
        """Return the stage without its rows, with a row count (for summaries)."""
        data = asdict(self)
        data["examples"] = len(data.pop("rows"))
        return data


def _counts(n: int, shares: Sequence[float]) -> list[int]:
    """Split ``n`` items into consecutive parts proportional to ``shares`` (largest remainders, ties to earlier)."""
    total = float(sum(shares))
    exact = [n * s / total for s in shares]
    counts = [int(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda k: (-(exact[k] - counts[k]), k))
    for k in order[: n - sum(counts)]:
        counts[k] += 1
    return counts


def build_stages(
    difficulties: Sequence[float],
    names: Sequence[str] = DEFAULT_STAGES,
    shares: Sequence[float] | None = None,
) -> list[Stage]:
    """Assign examples to stages ordered easy -> hard.

    Inputs: one difficulty per example (row ``k`` of the dataset), stage names
    from easiest to hardest, and each stage's share of the examples (equal by
    default; non-negative, not all zero). Output: one `Stage` per name; rows
    sorted by difficulty ascending (ties by row), consecutive across stages.
    """
    if not names:
        raise ValueError("need at least one stage")
    shares = list(shares) if shares is not None else [1.0] * len(names)
    if len(shares) != len(names) or any(s < 0 for s in shares) or sum(shares) <= 0:
        raise ValueError(f"need one non-negative share per stage, not all zero; got {shares} for {list(names)}")
    values = np.asarray(difficulties, dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError("difficulties must not be NaN")
    order = np.lexsort((np.arange(len(values)), values)).tolist()
    stages = []
    start = 0
    for name, count in zip(names, _counts(len(order), shares), strict=True):
        rows = order[start : start + count]
        start += count
        part = values[rows]
        stages.append(
            Stage(
                name=name,
                rows=rows,
                difficulty_min=float(part.min()) if rows else None,
                difficulty_max=float(part.max()) if rows else None,
                difficulty_mean=float(part.mean()) if rows else None,
            )
        )
    return stages


def stage_of_rows(stages: Sequence[Stage], n_rows: int) -> list[str]:
    """Return, for rows ``0 .. n_rows-1``, the name of the stage holding each row."""
    out = [""] * n_rows
    for stage in stages:
        for row in stage.rows:
            out[row] = stage.name
    return out
