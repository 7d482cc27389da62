"""The fine-tune decision rules, before and after training."""

import json

from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.evaluation.config import DecideConfig
from domainfit.evaluation.decision import DATA, FINETUNE, HYBRID, KEEP, NO_SHIP, SHIP, decide_after, decide_before


def bench(bm25, dense, hybrid):
    return {
        "systems": [
            {"name": "bm25", "kind": "lexical", "metrics": {"ndcg@10": bm25}, "config": {}},
            {"name": "dense", "kind": "dense", "metrics": {"ndcg@10": dense}, "config": {"model": "m"}},
            {"name": "hybrid-convex", "kind": "hybrid", "metrics": {"ndcg@10": hybrid}, "config": {}},
        ]
    }


def evaluation(lift, p, drop=None, overlap=0.9):
    forgetting = {"measured": False, "reason": "none"}
    if drop is not None:
        forgetting = {"measured": True, "labelled": {"drop": drop}, "neighbour_overlap": {"mean": overlap}}
    return {
        "n_queries": 400,
        "lift": {"dense": {"ndcg@10": lift}},
        "significance": {"dense": {"comparisons": [{"metric": "ndcg@10", "p_value": p}]}},
        "forgetting": forgetting,
    }


def test_before_rules():
    assert decide_before(bench(0.5, 0.8, 0.82), 5000, None, DecideConfig(target=0.75)).recommendation == KEEP
    hybrid = decide_before(bench(0.5, 0.60, 0.66), 5000, None, DecideConfig(target=0.65))
    assert hybrid.recommendation == HYBRID and any("with no training" in r for r in hybrid.reasons)
    assert decide_before(bench(0.5, 0.6, 0.61), 50, None, DecideConfig()).recommendation == DATA
    tune = decide_before(bench(0.5, 0.6, 0.61), 5000, None, DecideConfig(target=0.8))
    assert tune.recommendation == FINETUNE and any("gap to the target" in r for r in tune.reasons)


def test_after_rules():
    assert decide_after(evaluation(0.06, 0.001), DecideConfig()).recommendation == SHIP
    small = decide_after(evaluation(0.01, 0.001), DecideConfig())
    assert small.recommendation == NO_SHIP and any("below" in r for r in small.reasons)
    assert decide_after(evaluation(0.06, 0.2), DecideConfig()).recommendation == NO_SHIP
    forgot = decide_after(evaluation(0.06, 0.001, drop=0.05), DecideConfig())
    assert forgot.recommendation == NO_SHIP and any("dropped" in r for r in forgot.reasons)
    drifted = decide_after(evaluation(0.06, 0.001, drop=0.0, overlap=0.2), DecideConfig())
    assert drifted.recommendation == NO_SHIP


def test_decide_cli_before_training(tmp_path, mini_beir):
    runner = CliRunner()
    ws = tmp_path / "ws"
    missing = runner.invoke(app, ["decide", str(mini_beir), "--workspace", str(ws)])
    assert missing.exit_code == 2 and "run `domainfit bench` first" in missing.output
    assert runner.invoke(app, ["bench", str(mini_beir), "--workspace", str(ws), "--quiet"]).exit_code == 0
    result = runner.invoke(app, ["decide", str(mini_beir), "--workspace", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["when"] == "before" and decision["recommendation"] == DATA  # 8 train pairs only
    assert decision["cost"]["docs_per_second"] > 0 and decision["cost"]["train_steps"] >= 1
    markdown = (ws / "decide" / "decision-before.md").read_text()
    assert markdown.startswith("# Before training: generate data first")
    levels = decision["levels"]  # every level of effort, timed on this machine, its lift a prior until measured
    assert [e["level"] for e in levels["estimates"]] == ["prompts", "adapter", "static", "top-layers", "full"]
    assert all(e["train_seconds"] > 0 and e["lift_basis"] == "prior" for e in levels["estimates"])
    by_level = {e["level"]: e for e in levels["estimates"]}
    assert by_level["adapter"]["documents_reembedded"] == 0 and by_level["full"]["reindex_seconds"] > 0
    assert levels["probe"]["top_step"] < levels["probe"]["full_step"]
    assert levels["needed_lift"] == DecideConfig().min_lift
    assert levels["recommended"] == "full"  # the only level whose prior lift reaches 0.03
    assert "## Levels of effort" in markdown and "prior" in markdown and "**(recommended)**" in markdown


def test_cost_follows_the_configured_training_budget():
    from domainfit.core.models import DEFAULT_MODEL
    from domainfit.evaluation.config import DecideConfig
    from domainfit.evaluation.decision import costed_as_trained, probe_cost
    from domainfit.train.config import TrainConfig

    cfg = costed_as_trained(DecideConfig(), TrainConfig(max_steps=60, batch_size=16, epochs=2.0))
    assert (cfg.max_steps, cfg.batch_size, cfg.epochs) == (60, 16, 2.0)
    assert costed_as_trained(DecideConfig(), TrainConfig()).max_steps == -1  # the epochs decide
    texts = ["a short probe text"] * 4
    assert probe_cost(DEFAULT_MODEL, texts, 1000, 10, cfg).train_steps == 60
    assert probe_cost(DEFAULT_MODEL, texts, 1000, 10, DecideConfig()).train_steps == 31  # 1000 pairs / 32, one epoch
