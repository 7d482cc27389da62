"""The recipe stage in the workspace: settings from the data, a search on dev or folds, the winner's overrides."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_TRAIN
from domainfit.config import load_config
from domainfit.core.workspace import Workspace
from domainfit.stages.recipe import RecipeResult, run_recipe, trained_config
from domainfit.train.origins import MinedExamples, share_indices

RECIPE = {"learning_rates": [5e-4, 5e-2], "pilot_steps": 4, "min_rung_steps": 2, "dev_pool_depth": 10}


@pytest.fixture()
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _config(**recipe):
    train = {k: v for k, v in TINY_TRAIN.items() if k not in ("max_seq_length", "learning_rate")}
    return load_config(None, {"train": train, "recipe": {**RECIPE, **recipe}})


def test_share_indices_keep_every_labelled_row_and_cap_the_synthetic_ones():
    origins = ["labelled"] * 4 + ["synthetic"] * 10
    assert share_indices(origins, None) == list(range(14))
    assert share_indices(origins, 0.0) == [0, 1, 2, 3]
    kept = share_indices(origins, 0.5, seed=1)
    assert kept[:4] == [0, 1, 2, 3] and len(kept) == 8 and kept == sorted(kept)
    assert share_indices(origins, 0.5, seed=1) == kept  # seeded
    assert share_indices(["synthetic"] * 3, 0.0) == [0, 1, 2]  # no labelled rows: keep what there is
    mined = MinedExamples([], [])
    assert mined.counts() == {}


def test_recipe_search_on_dev_prunes_the_worse_recipe_and_hands_its_winner_to_train(mini_beir, tmp_path, one_thread):
    ws = Workspace(tmp_path / "w")
    cfg = _config(min_dev_queries=2)
    result = run_recipe(mini_beir, ws, cfg)
    assert result.selection == {"on": "dev", "reason": result.selection["reason"], "searched": True}
    states = {t["recipe"]["learning_rate"]: t["state"] for t in result.search["trials"]}
    assert states[5e-2] == "pruned" and states[5e-4] == "complete"
    assert result.winner["learning_rate"] == 5e-4
    assert result.pool["n_pool"] <= result.pool["n_corpus"] and result.pool["difference"] == pytest.approx(
        result.pool["pool"] - result.pool["full"]
    )
    names = [s["name"] for s in result.settings]
    assert names[0] == "max_seq_length" and "synthetic_shares" in names and "negatives" in names
    seq = result.settings[0]
    assert 32 <= seq["value"] <= 256 and "p90" in seq["reason"]
    assert "model window 256" in seq["reason"]  # the model's own window, not [train]'s default of 128
    train = trained_config(cfg.train, result.train_overrides)
    assert train.learning_rate == 5e-4 and train.max_seq_length == seq["value"] and train.synthetic_share == 0.0
    saved = json.loads((ws.root / "recipe" / "search.json").read_text())
    assert RecipeResult.from_json(saved).winner == result.winner
    summary = (ws.root / "recipe" / "summary.md").read_text()
    assert "pruned" in summary and "Settings read from the data" in summary
    plan = result.plan
    assert plan["steps"] == -(-plan["examples"] // 4) and plan["seconds_per_step"] > 0 and plan["seconds"] > 0
    assert "measured pilot steps" in plan["basis"]
    from domainfit.stages.recipe import plan_line

    assert plan_line(result).startswith(f"plan: train {plan['steps']} steps x ")
    assert run_recipe(mini_beir, ws, cfg).up_to_date


def test_without_a_usable_dev_split_selection_falls_back_to_train_folds(mini_beir, tmp_path, one_thread):
    ws = Workspace(tmp_path / "w")
    cfg = _config(folds=2, learning_rates=[5e-4, 5e-2], min_dev_queries=30)  # the mini dev split has 4 queries
    result = run_recipe(mini_beir, ws, cfg)
    assert result.selection["on"].startswith("folds") and result.pool is None
    assert {t["state"] for t in result.search["trials"]} <= {"complete", "pruned"}
    assert "folds" in (ws.root / "recipe" / "summary.md").read_text()


def test_a_max_seq_length_set_by_the_user_is_kept(mini_beir, tmp_path):
    ws = Workspace(tmp_path / "w")
    cfg = load_config(None, {"train": {**TINY_TRAIN}, "recipe": {**RECIPE, "search": False}})
    result = run_recipe(mini_beir, ws, cfg)
    assert result.settings[0] == {"name": "max_seq_length", "value": 32, "reason": "set in [train]"}
    assert result.search is None and result.selection["searched"] is False


def test_a_learning_rate_set_by_the_user_is_the_only_one_tried(mini_beir, tmp_path):
    ws = Workspace(tmp_path / "w")
    cfg = load_config(None, {"train": {**TINY_TRAIN}, "recipe": RECIPE})
    result = run_recipe(mini_beir, ws, cfg)
    assert result.selection["searched"] is False  # one learning rate, labelled pairs only: one recipe
    assert result.train_overrides == {"max_seq_length": 32}
