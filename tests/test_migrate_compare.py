"""The dual run of two versions and the migration gate, on runs built here with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from domainfit.evaluation.metrics import evaluate
from domainfit.evaluation.significance import compare_runs
from domainfit.migrate.compare import compare_versions, list_agreement, migration_gate
from domainfit.migrate.config import MigrateSettings

N = 40
QRELS = {f"q{i:02d}": {f"d{i:02d}": 1} for i in range(N)}
LABELS = {f"q{i:02d}": {"family": "auth" if i < N // 2 else "billing"} for i in range(N)}


def ranked(qid: str, first: list[str]) -> dict[str, float]:
    """A run entry: ``first`` in order, then ten shared fillers."""
    ids = [*first, *(f"f{j}" for j in range(10))]
    return {doc: 1.0 - 0.01 * rank for rank, doc in enumerate(dict.fromkeys(ids))}


def old_run() -> dict[str, dict[str, float]]:
    """The old version finds each relevant document at rank 3 for half the queries, misses the rest."""
    return {
        f"q{i:02d}": ranked(f"q{i:02d}", ["f0", "f1", f"d{i:02d}"] if i % 2 == 0 else ["f0", "f1"]) for i in range(N)
    }


def better_run() -> dict[str, dict[str, float]]:
    """The new version puts every relevant document first."""
    return {f"q{i:02d}": ranked(f"q{i:02d}", [f"d{i:02d}"]) for i in range(N)}


def test_list_agreement_on_known_lists():
    assert list_agreement(["a", "b", "c"], ["a", "b", "c"], 3) == (1.0, 1.0, True)
    overlap, jaccard, top1 = list_agreement(["a", "b", "c", "d"], ["b", "a", "e", "f"], 4)
    assert (overlap, jaccard, top1) == (0.5, pytest.approx(2 / 6), False)
    assert list_agreement([], [], 10) == (1.0, 1.0, True)
    assert list_agreement(["a"], [], 10) == (0.0, 0.0, False)
    assert list_agreement(["a", "b"], ["a", "b"], 10)[0] == 1.0  # short identical lists agree fully


def test_a_better_new_version_gets_a_go_with_significant_lift_per_slice():
    old, new = old_run(), better_run()
    settings = MigrateSettings(min_lift=0.05, require_significant=True)
    comparison = compare_versions(QRELS, old, new, labels=LABELS, settings=settings)
    overall = comparison.overall()
    assert overall.old == pytest.approx(evaluate(QRELS, old, ["ndcg@10"])["ndcg@10"])
    assert overall.new == pytest.approx(1.0)
    assert overall.p_value == pytest.approx(
        compare_runs(QRELS, {"old": old, "new": new}, "old", ["ndcg@10"]).comparison("new", "ndcg@10").p_value
    )
    assert overall.significant
    rows = {(r.slice, r.value, r.metric): r for r in comparison.slices}
    assert rows["family", "auth", "recall@10"].n_queries == N // 2
    assert rows["family", "billing", "recall@10"].delta == pytest.approx(0.5)
    gate = migration_gate(comparison, settings)
    assert gate.go and gate.reasons == []
    json.loads(json.dumps({"comparison": comparison.to_dict(), "gate": gate.to_dict()}))


def test_agreement_top1_and_the_queries_that_changed_most():
    old, new = old_run(), dict(old_run())
    new["q07"] = ranked("q07", ["z1", "z2", "z3", "z4", "z5", "z6", "z7", "z8", "z9", "z10"])  # all new results
    comparison = compare_versions(QRELS, old, new, settings=MigrateSettings(changed_examples=3))
    assert comparison.changed_most[0].query_id == "q07"
    assert comparison.changed_most[0].jaccard == 0.0 and not comparison.changed_most[0].top1_same
    assert comparison.agreement.n_queries == N
    assert comparison.agreement.jaccard == pytest.approx((N - 1) / N)
    assert comparison.agreement.top1_agreement == pytest.approx((N - 1) / N)
    assert comparison.overall().delta == pytest.approx(0.0)
    assert comparison.overall().p_value == 1.0  # identical per-query scores


def test_a_worse_new_version_gets_a_no_go_with_reasons():
    comparison = compare_versions(QRELS, better_run(), old_run(), labels=LABELS)
    gate = migration_gate(comparison)
    assert not gate.go
    assert any(r.startswith("ndcg@10 lift -") for r in gate.reasons)
    assert any("slice(s) lose more than" in r for r in gate.reasons)


def test_canary_churn_above_the_limit_refuses_the_switch():
    old = old_run()
    rng = np.random.default_rng(0)
    new = {}
    for i in range(N):  # same relevant document, but the rest of the top 10 is all new
        qid = f"q{i:02d}"
        new[qid] = {doc: score for doc, score in old[qid].items() if doc.startswith("d")}
        new[qid].update({f"n{i}_{j}": float(rng.uniform(0, 0.5)) for j in range(9)})
    canaries = [f"q{i:02d}" for i in range(10)]
    settings = MigrateSettings(min_lift=-1.0, max_slice_drop=None, max_canary_churn=0.3)
    comparison = compare_versions(QRELS, old, new, canaries=canaries, settings=settings)
    assert comparison.canary_agreement is not None and comparison.canary_agreement.n_queries == 10
    gate = migration_gate(comparison, settings)
    assert not gate.go
    assert [c.name for c in gate.checks if not c.passed] == ["canary_churn"]
    relaxed = MigrateSettings(min_lift=-1.0, max_slice_drop=None, max_canary_churn=1.0)
    assert migration_gate(comparison, relaxed).go


def test_bad_inputs_and_settings():
    with pytest.raises(ValueError, match="relevant document"):
        compare_versions({"q": {"d": 0}}, old_run(), better_run())
    with pytest.raises(ValueError, match="neither run"):
        compare_versions(QRELS, old_run(), better_run(), canaries=["nope"])
    with pytest.raises(ValueError, match="primary_metric"):
        MigrateSettings(metrics=["recall@10"])
    with pytest.raises(ValueError, match="bridge_ranks"):
        MigrateSettings(bridge_ranks=[0])


def test_churn_of_judged_canaries_is_reported_but_does_not_refuse():
    """Canaries that are the judged queries: a real lift changes their lists; quality, not churn, gates them."""
    old, better = old_run(), better_run()
    settings = MigrateSettings(max_slice_drop=None, max_canary_churn=0.0)
    comparison = compare_versions(QRELS, old, better, canaries=list(QRELS), settings=settings)
    assert comparison.canary_agreement is not None and comparison.canary_agreement.churn > 0.0
    assert not migration_gate(comparison, settings).go  # a user's canary file: churn refuses
    judged = migration_gate(comparison, settings, churn_gates=False)
    churn = next(c for c in judged.checks if c.name == "canary_churn")
    assert judged.go and churn.value > churn.limit and "not gated" in churn.reason
    worse = compare_versions(QRELS, better, old, canaries=list(QRELS), settings=settings)
    assert not migration_gate(worse, settings, churn_gates=False).go  # quality still gates them
