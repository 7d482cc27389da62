"""Canary checks: recall@k and MRR@k against the recorded baseline, alerting below a floor."""

from __future__ import annotations

import json

import pytest

from domainfit.monitor.canary import canary_baseline, canary_check
from domainfit.monitor.config import MonitorSettings
from domainfit.monitor.verdict import decide

QRELS = {f"q{i}": {f"d{i}": 1} for i in range(20)}


def healthy_run() -> dict[str, dict[str, float]]:
    """Every canary finds its document first."""
    return {f"q{i}": {f"d{i}": 0.9, f"x{i}": 0.5, f"y{i}": 0.4} for i in range(20)}


def test_an_unchanged_service_passes_its_canaries():
    settings = MonitorSettings(canary_k=10)
    baseline = canary_baseline(QRELS, healthy_run(), settings)
    assert baseline == {"recall@10": 1.0, "mrr@10": 1.0}
    result = canary_check(QRELS, healthy_run(), baseline, settings)
    assert not result.alert and result.failed_queries == ()
    verdict = decide(None, result, settings)
    assert verdict.healthy and verdict.exit_code == 0


def test_an_injected_canary_failure_alerts():
    settings = MonitorSettings(canary_k=10, canary_max_drop=0.05)
    baseline = canary_baseline(QRELS, healthy_run(), settings)
    broken = healthy_run()
    for i in range(3):  # three canaries lose their document (a broken index shard, say)
        broken[f"q{i}"] = {f"x{i}": 0.9}
    result = canary_check(QRELS, broken, baseline, settings)
    assert result.alert
    assert result.failed_queries == ("q0", "q1", "q2")
    recall = next(m for m in result.metrics if m.metric == "recall@10")
    assert recall.value == pytest.approx(17 / 20) and recall.floor == pytest.approx(0.95)
    verdict = decide(None, result, settings)
    assert verdict.status == "alert" and verdict.exit_code == 1
    assert any("recall@10" in r and "below its floor" in r for r in verdict.reasons)
    json.loads(json.dumps(verdict.to_dict()))


def test_a_small_drop_within_the_margin_is_no_alert_but_an_absolute_floor_is():
    settings = MonitorSettings(canary_k=10, canary_max_drop=0.1)
    baseline = canary_baseline(QRELS, healthy_run(), settings)
    demoted = healthy_run()
    demoted["q0"] = {"x0": 0.9, "d0": 0.8}  # q0's document falls to rank 2: MRR 0.975
    assert not canary_check(QRELS, demoted, baseline, settings).alert
    strict = MonitorSettings(canary_k=10, canary_max_drop=0.1, canary_floor=0.99)
    result = canary_check(QRELS, demoted, baseline, strict)
    assert [m.metric for m in result.metrics if m.alert] == ["mrr@10"]


def test_bad_canary_inputs():
    settings = MonitorSettings(canary_k=5)
    with pytest.raises(ValueError, match="recall@5"):
        canary_check(QRELS, healthy_run(), {"recall@10": 1.0, "mrr@10": 1.0}, settings)
    with pytest.raises(ValueError, match="relevant document"):
        canary_baseline({"q": {"d": 0}}, healthy_run(), settings)
