"""Curriculum: difficulty and stages ordered easy -> hard."""

from __future__ import annotations

import itertools
import random

import pytest

from domainfit.mine.curriculum import build_stages, difficulty, stage_of_rows


def test_difficulty_is_mean_negative_similarity_minus_positive():
    assert difficulty(0.8, [0.2, 0.4]) == pytest.approx(-0.5)
    assert difficulty(0.5, [0.6]) == pytest.approx(0.1)  # a negative above the positive: harder than any other
    with pytest.raises(ValueError):
        difficulty(0.5, [])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 101])
def test_stages_are_ordered_easy_to_hard_and_partition_the_rows(n):
    rng = random.Random(n)
    values = [round(rng.uniform(-1, 0.2), 1) for _ in range(n)]  # rounding makes ties
    stages = build_stages(values)
    assert [s.name for s in stages] == ["easy", "medium", "hard"]
    rows = [r for s in stages for r in s.rows]
    assert sorted(rows) == list(range(n))
    assert [values[r] for r in rows] == sorted(values)  # easiest first, consecutive across stages
    sizes = [len(s.rows) for s in stages]
    assert max(sizes) - min(sizes) <= 1
    filled = [s for s in stages if s.rows]
    for easier, harder in itertools.pairwise(filled):
        assert easier.difficulty_max <= harder.difficulty_min
    for stage in filled:
        assert stage.difficulty_min <= stage.difficulty_mean <= stage.difficulty_max
    labels = stage_of_rows(stages, n)
    assert all(labels[r] == s.name for s in stages for r in s.rows)


def test_stage_shares_and_names():
    stages = build_stages([0.3, 0.1, 0.2, 0.0, 0.4], names=["warmup", "main"], shares=[0.4, 0.6])
    assert [(s.name, s.rows) for s in stages] == [("warmup", [3, 1]), ("main", [2, 0, 4])]
    assert stages[0].summary() == {
        "name": "warmup",
        "difficulty_min": 0.0,
        "difficulty_max": 0.1,
        "difficulty_mean": pytest.approx(0.05),
        "examples": 2,
    }
    with pytest.raises(ValueError, match="share"):
        build_stages([0.1], names=["a", "b"], shares=[1.0])
    with pytest.raises(ValueError, match="NaN"):
        build_stages([float("nan")])
