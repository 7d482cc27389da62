from __future__ import annotations

import numpy as np
import pytest

from domainfit.core.errors import UsageError
from domainfit.evaluation.metrics import evaluate
from domainfit.evaluation.significance import TESTS, compare_runs

METRICS = ["ndcg@10", "map@100", "mrr@10"]


def _runs(n_queries: int = 50) -> tuple[dict, dict, dict]:
    rng = np.random.default_rng(3)
    qrels: dict[str, dict[str, int]] = {}
    good: dict[str, dict[str, float]] = {}
    rand: dict[str, dict[str, float]] = {}
    for i in range(n_queries):
        qid = f"q{i}"
        docs = [f"doc-{i}-{j}" for j in range(40)]
        relevant = {docs[j] for j in rng.choice(40, size=3, replace=False)}
        qrels[qid] = {d: int(rng.integers(1, 3)) for d in relevant}
        rand[qid] = {d: float(rng.random()) for d in docs}
        # relevant documents pushed up for 80% of the queries
        boost = 1.0 if rng.random() < 0.8 else 0.0
        good[qid] = {d: float(rng.random()) + boost * (d in relevant) for d in docs}
    rand["q0"] = {}  # an empty run entry still counts (as 0)
    del good["q1"]  # so does a missing one
    return qrels, good, rand


def test_better_run_is_significant_and_self_is_not() -> None:
    qrels, good, rand = _runs()
    result = compare_runs(qrels, {"random": rand, "good": good, "copy": rand}, metrics=METRICS)
    assert result.test == "student"
    assert result.test_description == TESTS["student"]
    assert result.baseline == "random"
    assert result.n_queries == 50
    assert result.alpha == 0.05
    assert len(result.comparisons) == 2 * len(METRICS)
    # the means are the ones metrics.evaluate reports
    for name, run in {"random": rand, "good": good}.items():
        expected = evaluate(qrels, run, METRICS)
        for m in METRICS:
            assert result.means[name][m] == pytest.approx(expected[m], abs=1e-12)
    for m in METRICS:
        better = result.comparison("good", m)
        assert better.significant
        assert better.p_value < 1e-6
        assert better.delta > 0.3
        same = result.comparison("copy", m)
        assert not same.significant
        assert same.p_value == 1.0
        assert same.delta == 0.0
    with pytest.raises(KeyError):
        result.comparison("random", "map@100")
    as_dict = result.to_dict()
    assert as_dict["comparisons"][0]["system"] == "good"
    assert as_dict["n_queries"] == 50


def test_fisher_and_explicit_baseline() -> None:
    qrels, good, rand = _runs(30)
    noisy = {q: {d: s + 1e-3 for d, s in docs.items()} for q, docs in rand.items()}
    result = compare_runs(
        qrels,
        {"random": rand, "good": good, "shifted": noisy},
        baseline="good",
        metrics=["ndcg@10"],
        test="fisher",
        n_permutations=300,
    )
    assert result.test == "fisher"
    assert result.n_permutations == 300
    assert result.comparison("random", "ndcg@10").significant
    assert result.comparison("random", "ndcg@10").delta < 0
    # shifting every score keeps each ranking, so "shifted" scores like "random"
    assert result.means["shifted"] == result.means["random"]
    result = compare_runs(qrels, {"random": rand, "shifted": noisy}, metrics=["ndcg@10"], test="fisher")
    assert result.comparison("shifted", "ndcg@10").p_value == 1.0
    assert not result.comparison("shifted", "ndcg@10").significant


def test_argument_errors() -> None:
    qrels, good, rand = _runs(5)
    with pytest.raises(UsageError):
        compare_runs(qrels, {"a": good}, metrics=["map"])
    with pytest.raises(UsageError):
        compare_runs(qrels, {"a": good, "b": rand}, baseline="c", metrics=["map"])
    with pytest.raises(UsageError):
        compare_runs(qrels, {"a": good, "b": rand}, test="wilcoxon", metrics=["map"])
    with pytest.raises(UsageError):
        compare_runs(qrels, {"a": good, "b": rand}, alpha=1.5, metrics=["map"])
    with pytest.raises(ValueError):
        compare_runs({"q": {"x": 0}}, {"a": good, "b": rand}, metrics=["map"])
