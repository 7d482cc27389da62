"""Levels through the train and eval stages: prompts and the query-side adapter, the kept level rows, bad settings."""

import json

import pytest
from sentence_transformers import SentenceTransformer

from conftest import TINY_TRAIN as TINY
from domainfit.core.errors import InputError
from domainfit.core.workspace import Workspace
from domainfit.evaluation.config import EvalConfig
from domainfit.stages.eval import run_eval
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig


def test_prompts_then_adapter_each_evaluated_and_both_in_the_levels_table(tmp_path, mini_beir):
    ws = Workspace(tmp_path / "ws")
    cfg = TrainConfig(level="prompts", prompt_candidates=[("topic: ", "")], **TINY)
    prompts = run_train(mini_beir, ws, cfg)
    assert prompts.level == "prompts" and prompts.steps == 0
    tried = prompts.level_details["prompts"]["candidates"]
    assert tried[0]["query_prompt"] == "topic: " and {"", "query: "} <= {t["query_prompt"] for t in tried}
    assert prompts.best_dev_ndcg10 == max(t["dev_ndcg@10"] for t in tried) >= prompts.base_dev_ndcg10
    saved = SentenceTransformer(str(ws.root / "train" / "model"), device="cpu")
    chosen = prompts.level_details["prompts"]
    assert saved.prompts["query"] == chosen["query_prompt"] and saved.prompts["document"] == chosen["document_prompt"]
    evaluation = EvalConfig(general=str(mini_beir), examples=2)
    run_eval(mini_beir, ws, evaluation)

    adapter = run_train(mini_beir, ws, TrainConfig(level="adapter", adapter_epochs=3, **TINY))
    folder = ws.root / "train" / "model"
    assert adapter.level == "adapter" and sorted(p.name for p in folder.iterdir()) == [
        "query_adapter.json",
        "query_adapter.safetensors",
    ]
    assert adapter.level_details["documents_re_embedded"] == 0 and adapter.best_step is not None
    assert adapter.level_details["batch_size"] == 32 != TINY["batch_size"]  # its own batch, not the trainer's
    result = run_eval(mini_beir, ws, evaluation)
    assert result.model == str(folder)
    row = json.loads((ws.root / "eval" / "level-adapter.json").read_text())
    assert row["documents_reembedded"] == 0 and row["reindex_seconds"] == 0.0
    assert row["model_bytes"] < 1_000_000 < row["base_model_bytes"]  # a small file beside an untouched model
    assert row["neighbour_overlap"] == 1.0  # documents (the general texts) keep the base vectors
    assert (ws.root / "eval" / "level-prompts.json").is_file()  # kept from the earlier run
    table = (ws.root / "eval" / "levels.md").read_text()
    assert "| 1 prompts |" in table and "| 1q adapter |" in table


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"level": "top-layers", "top_layers": 9}, "top_layers"),
        ({"level": "adapter", "merge": True}, "level"),
        ({"level": "static", "regularize": "mse"}, "regularize"),
        ({"level": "top-layers", "top_layers": 0, "top_layers_candidates": []}, "top_layers_candidates"),
    ],
)
def test_bad_level_settings_fail_before_any_work(tmp_path, mini_beir, settings, field):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(InputError) as raised:
        run_train(mini_beir, ws, TrainConfig(**settings, **TINY))
    assert raised.value.field == field
    assert not (ws.root / "train").exists()


def test_the_level_is_a_checked_setting():
    with pytest.raises(ValueError, match="level"):
        TrainConfig(level="everything")


@pytest.mark.slow
def test_a_static_model_trains_on_the_pairs_and_encodes_much_faster(tmp_path, mini_beir):
    from domainfit.retrieval.dense import DenseRetriever

    ws = Workspace(tmp_path / "ws")
    result = run_train(mini_beir, ws, TrainConfig(level="static", static_source="tokenlearn", max_steps=2, **TINY))
    assert result.level == "static" and result.steps == 2 and result.level_details["dims"] == 64
    dense = DenseRetriever(str(ws.root / "train" / "model"))
    assert dense.check_truncation(["a text"], "documents") is None  # no window: nothing is cut
    vectors = dense.encode_documents(["refund policy", "reset a password"])
    assert vectors.shape == (2, 64)
