"""`domainfit eval`: base vs fine-tuned on a tiny real dataset."""

import json

import pytest
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.core.workspace import Workspace
from domainfit.evaluation.config import EvalConfig
from domainfit.evaluation.forgetting import neighbour_overlap
from domainfit.stages.eval import run_eval
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace holding a model fine-tuned for a few steps on the mini dataset."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import build_mini_dataset
    from domainfit.data.beir import write_beir

    root = tmp_path_factory.mktemp("eval")
    data = write_beir(build_mini_dataset(), root / "mini")
    ws = Workspace(root / "ws")
    cfg = TrainConfig(max_steps=3, batch_size=4, max_seq_length=32, eval_steps=3, save_steps=3,
                      eval_max_corpus=30, learning_rate=5e-4, early_stopping_patience=None)  # fmt: skip
    run_train(data, ws, cfg)
    return data, ws


def test_eval_compares_base_and_fine_tuned(trained):
    data, ws = trained
    result = run_eval(data, ws, EvalConfig(general=str(data), examples=3))
    names = [s.name for s in result.systems]
    assert names[0] == "bm25" and "dense:base" in names and "dense:fine-tuned" in names
    assert "hybrid-convex:fine-tuned" in names
    assert set(result.lift) == {"dense", "hybrid-rrf", "hybrid-convex"}
    dense = {s.name: s.metrics["ndcg@10"] for s in result.systems}
    assert result.lift["dense"]["ndcg@10"] == pytest.approx(dense["dense:fine-tuned"] - dense["dense:base"])
    comparison = result.significance["dense"]["comparisons"][0]
    assert comparison["baseline"] == "dense:base" and 0.0 <= comparison["p_value"] <= 1.0
    assert all(r["delta"] > 0 for r in result.improved) and all(r["delta"] < 0 for r in result.worsened)
    forgetting = result.forgetting
    assert forgetting["measured"] and 0.0 <= forgetting["neighbour_overlap"]["mean"] <= 1.0
    assert "drop" in forgetting["labelled"]
    assert set(forgetting["variants"]) == {"fine-tuned"} and 0.0 < forgetting["cosine_to_base"] <= 1.0 + 1e-6
    assert forgetting["train_options"]["regularize"] is None and not forgetting["train_options"]["separate_encoders"]
    assert result.head_tail["n"] == {"head": 4, "tail": 4} and "dense:base" in result.head_tail
    summary = (ws.root / "eval" / "summary.md").read_text()
    assert "## Fine-tuned minus base" in summary and "## Forgetting" in summary
    assert "none (plain fine-tuning)" in summary and "| fine-tuned |" in summary
    deploy = result.deployable
    assert deploy["chosen_on"] == "dev" and set(deploy["selection"]) == set(names)
    assert deploy["chosen"] == max(deploy["selection"], key=lambda n: deploy["selection"][n])
    assert deploy["test"]["dense:base"] == pytest.approx(dense["dense:base"])
    if deploy["chosen"] != "dense:base":
        assert 0.0 <= deploy["versus"]["dense:base"]["p_value"] <= 1.0
    assert run_eval(data, ws, EvalConfig(general=str(data), examples=3)).up_to_date


def test_eval_cli_without_model_is_bad_input(tmp_path, mini_beir):
    result = runner.invoke(app, ["eval", str(mini_beir), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "run `domainfit train`" in result.output


def test_eval_cli_json(trained):
    data, ws = trained
    result = runner.invoke(app, ["eval", str(data), "--workspace", str(ws.root), "--json", "--force"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["split"] == "test"
    forgetting = payload["forgetting"]  # by default on the bundled general pairs (labelled: query -> passage)
    assert forgetting["measured"] and forgetting["general"] == "bundled"
    assert forgetting["neighbour_overlap"]["texts"] == 300
    assert forgetting["labelled"]["split"] == "test" and "ndcg@10_drop" in forgetting["variants"]["fine-tuned"]


def test_neighbour_overlap_is_one_for_the_same_model(minilm):
    texts = [f"document number {i} about topic {i % 4}" for i in range(15)]
    mean, per_text = neighbour_overlap(minilm, minilm, texts, k=5)
    assert mean == pytest.approx(1.0) and per_text.shape == (15,)
    with pytest.raises(ValueError):
        neighbour_overlap(minilm, minilm, texts[:3], k=5)


def test_head_tail_labels_by_frequency_and_by_family(mini_beir):
    from domainfit.data.beir import load_beir
    from domainfit.stages.eval import head_tail_labels

    data = load_beir(mini_beir)
    qrels = data.qrels["test"]
    labels, basis = head_tail_labels(data, qrels)
    assert basis == "family size" and sorted(labels.values()).count("head") == 4
    for i, qid in enumerate(sorted(qrels)):
        data.queries[qid].metadata["frequency"] = 100 if i == 0 else 1  # one very popular query
    labels, basis = head_tail_labels(data, qrels)
    assert basis == "query frequency"
    assert [q for q, g in labels.items() if g == "head"] == [sorted(qrels)[0]]
