"""`domainfit run`: the whole loop on a tiny real dataset, then again with nothing to do."""

import json

from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.config import Config
from domainfit.pipeline import run_pipeline
from domainfit.workspace import Workspace

TINY_TRAIN = {
    "max_steps": 2,
    "batch_size": 4,
    "max_seq_length": 32,
    "eval_steps": 2,
    "save_steps": 2,
    "eval_max_corpus": 30,
    "early_stopping_patience": None,
}


def tiny_config(compress=False, **decide):
    raw = {"train": TINY_TRAIN, "decide": decide, "pipeline": {"compress": compress}}
    raw["recipe"] = {"learning_rates": [5e-4, 1e-4], "pilot_steps": 4, "min_rung_steps": 2, "min_dev_queries": 2}
    if "mine" in Config.model_fields:
        raw["mine"] = {"range_min": 1, "range_max": 30, "negatives": 1}
    return Config.model_validate(raw)


def test_run_chains_every_stage_then_skips_what_is_up_to_date(tmp_path, mini_beir):
    ws = Workspace(tmp_path / "ws")
    first = run_pipeline(mini_beir, ws, tiny_config(compress=True))
    stages = [s["stage"] for s in first.stages]
    assert stages[:2] == ["bench", "decide"]
    assert stages[-6:] == ["recipe", "train", "eval", "decide", "compress", "report"]
    chosen = json.loads((ws.root / "recipe" / "search.json").read_text())
    trained = json.loads((ws.root / "train" / "result.json").read_text())
    assert chosen["train_overrides"]["learning_rate"] in (5e-4, 1e-4) and trained["steps"] == 2
    assert first.decision_before == "generate data first" and first.decision_after in ("ship", "do not ship")
    assert first.report and (ws.root / "report" / "report.html").is_file()
    html = (ws.root / "report" / "report.html").read_text()
    assert "Base vs fine-tuned" in html and "Training" in html and "Compression" in html
    assert "Training recipe" in html and "Winner:" in html
    second = run_pipeline(mini_beir, ws, tiny_config(compress=True))
    status = {s["stage"]: s["status"] for s in second.stages}
    assert (
        status["bench"] == status["recipe"] == status["train"] == status["eval"] == status["compress"] == "up to date"
    )


def test_run_stops_when_training_will_not_pay(tmp_path, mini_beir):
    ws = Workspace(tmp_path / "ws")
    result = run_pipeline(mini_beir, ws, tiny_config(target=0.5))  # the baselines already reach it
    assert result.decision_before == "keep the baseline" and "not training" in result.stopped
    assert [s["stage"] for s in result.stages] == ["bench", "decide"]
    assert not (ws.root / "train").exists() and (ws.root / "report" / "report.html").is_file()


def test_run_cli_json(tmp_path, mini_beir):
    config = tmp_path / "domainfit.toml"
    config.write_text("[decide]\ntarget = 0.5\n")
    result = CliRunner().invoke(
        app, ["run", str(mini_beir), "--workspace", str(tmp_path / "ws"), "--config", str(config), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stopped"]
