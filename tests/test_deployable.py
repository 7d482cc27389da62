"""The deployable answer: chosen on the selection split, proved on test, named by the decision."""

from __future__ import annotations

import pytest

from domainfit.evaluation.config import DecideConfig
from domainfit.evaluation.decision import NO_SHIP, SHIP, decide_after
from domainfit.evaluation.deployable import choose, deployable, is_base_system


def _qrels(n: int) -> dict[str, dict[str, int]]:
    return {f"q{i}": {f"d{i}": 1} for i in range(n)}


def _run(n: int, hits: set[int]) -> dict[str, dict[str, float]]:
    """Rank the relevant document first for queries in ``hits``, tenth otherwise."""
    run = {}
    for i in range(n):
        scores = {f"x{i}-{j}": 1.0 - j / 100 for j in range(9)}
        scores[f"d{i}"] = 2.0 if i in hits else 0.5
        run[f"q{i}"] = scores
    return run


def test_base_systems_need_no_training():
    assert is_base_system("bm25") and is_base_system("hybrid-convex:base") and is_base_system("dense:base")
    assert not is_base_system("dense:fine-tuned") and not is_base_system("hybrid-rrf:merged")


def test_ties_go_to_the_simpler_system():
    assert choose({"dense:fine-tuned": 0.8, "dense:base": 0.8}, prefer=("dense:base",)) == "dense:base"
    assert choose({"hybrid-convex:fine-tuned": 0.8, "dense:fine-tuned": 0.8}) == "dense:fine-tuned"


def test_the_choice_is_made_on_the_selection_split_not_on_test():
    n = 40
    runs = {
        "bm25": _run(n, set(range(10))),
        "dense:base": _run(n, set(range(20))),
        "dense:fine-tuned": _run(n, set(range(36))),
        "hybrid-convex:fine-tuned": _run(n, set(range(38))),  # best on test ...
    }
    selection = {"bm25": 0.3, "dense:base": 0.5, "dense:fine-tuned": 0.7, "hybrid-convex:fine-tuned": 0.6}
    chosen = deployable(selection, "dev", _qrels(n), runs, "ndcg@10")
    assert chosen.chosen == "dense:fine-tuned" and chosen.chosen_on == "dev"  # ... but dev decides
    assert set(chosen.versus) == {"bm25", "dense:base"}
    assert chosen.versus["dense:base"]["lift"] == pytest.approx(
        chosen.test["dense:fine-tuned"] - chosen.test["dense:base"]
    )
    assert chosen.versus["dense:base"]["p_value"] < 0.01
    on_test = deployable(None, "dev", _qrels(n), runs, "ndcg@10")
    assert on_test.chosen == "hybrid-convex:fine-tuned" and on_test.chosen_on == "test" and on_test.notes


def _evaluation(lift: float, p: float, deploy: dict) -> dict:
    return {
        "lift": {"dense": {"ndcg@10": lift}},
        "significance": {"dense": {"comparisons": [{"metric": "ndcg@10", "p_value": p}]}},
        "n_queries": 100,
        "forgetting": {"measured": False},
        "deployable": deploy,
    }


def test_the_decision_names_the_deployable_best_system():
    deploy = {
        "chosen": "hybrid-convex:fine-tuned", "chosen_on": "dev", "metric": "ndcg@10",
        "selection": {"dense:base": 0.6, "hybrid-convex:base": 0.65, "hybrid-convex:fine-tuned": 0.72},
        "test": {"dense:base": 0.60, "hybrid-convex:base": 0.64, "hybrid-convex:fine-tuned": 0.70},
        "versus": {
            "dense:base": {"lift": 0.10, "p_value": 0.001},
            "hybrid-convex:base": {"lift": 0.06, "p_value": 0.01},
        },
        "notes": [],
    }  # fmt: skip
    decision = decide_after(_evaluation(0.08, 0.001, deploy), DecideConfig())
    assert decision.recommendation == SHIP
    assert decision.numbers["deploy"]["system"] == "hybrid-convex:fine-tuned"
    assert decision.numbers["deploy"]["lift"] == pytest.approx(0.10)
    assert any(r.startswith("deploy: hybrid-convex:fine-tuned") and "p=0.001" in r for r in decision.reasons)


def test_without_a_significant_lift_the_best_base_system_is_named():
    deploy = {
        "chosen": "dense:fine-tuned", "chosen_on": "dev", "metric": "ndcg@10",
        "selection": {"dense:base": 0.6, "hybrid-convex:base": 0.66, "dense:fine-tuned": 0.67},
        "test": {"dense:base": 0.60, "hybrid-convex:base": 0.64, "dense:fine-tuned": 0.61},
        "versus": {"dense:base": {"lift": 0.01, "p_value": 0.4}, "hybrid-convex:base": {"lift": -0.03, "p_value": 0.2}},
        "notes": [],
    }  # fmt: skip
    decision = decide_after(_evaluation(0.01, 0.4, deploy), DecideConfig())
    assert decision.recommendation == NO_SHIP
    assert decision.numbers["deploy"]["system"] == "hybrid-convex:base"
    assert any("deploy hybrid-convex:base (no training needed)" in r for r in decision.reasons)


def test_without_a_dev_split_the_hybrid_weight_is_tuned_on_the_train_queries(mini_beir, tmp_path):
    """Few labels, no dev split: bench tunes the convex hybrid on the train queries (few-shot) and says so."""
    from domainfit.config import BenchConfig
    from domainfit.core.workspace import Workspace
    from domainfit.data.beir import load_beir
    from domainfit.data.judged import tuning_qrels
    from domainfit.stages.bench import run_bench

    (mini_beir / "qrels" / "dev.tsv").unlink()
    dataset = load_beir(mini_beir)
    qrels, split, note = tuning_qrels(dataset, "dev")
    assert split == "train" and qrels == dataset.qrels["train"] and "few-shot" in note
    result = run_bench(mini_beir, Workspace(tmp_path / "w"), BenchConfig(max_seq_length=32))
    tuning = result.hybrid_tuning["all-MiniLM-L6-v2"]
    assert tuning["split"] == "train" and tuning["alpha"] is not None
    assert any("few-shot" in n for n in result.notes)


def test_a_judged_dev_split_is_used_for_tuning(mini_beir):
    from domainfit.data.beir import load_beir
    from domainfit.data.judged import tuning_qrels

    dataset = load_beir(mini_beir)
    assert tuning_qrels(dataset, "dev")[1:] == ("dev", None)
    assert tuning_qrels(dataset, None) == (None, None, None)  # tuning turned off
