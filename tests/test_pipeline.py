"""`domainfit run`: the whole loop on a tiny real dataset, then again with nothing to do."""

import json

from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.config import Config
from domainfit.core.workspace import Workspace
from domainfit.stages.pipeline import run_pipeline

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
    assert stages[:3] == ["plan", "bench", "decide"]
    assert stages[-7:] == ["recipe", "train", "eval", "decide", "compress", "index", "report"]
    chosen = json.loads((ws.root / "recipe" / "search.json").read_text())
    trained = json.loads((ws.root / "train" / "result.json").read_text())
    assert chosen["train_overrides"]["learning_rate"] in (5e-4, 1e-4) and trained["steps"] == 2
    assert first.decision_before == "generate data first" and first.decision_after in ("ship", "do not ship")
    assert first.report and (ws.root / "report" / "report.html").is_file()
    html = (ws.root / "report" / "report.html").read_text()
    assert "Base vs fine-tuned" in html and "Training" in html and "Compression" in html
    assert "Training recipe" in html and "Winner:" in html
    assert "# Serving index" in (ws.root / "report" / "report.md").read_text()
    assert (ws.root / "index" / "serving.json").is_file()
    plan = json.loads((ws.root / "plan" / "plan.json").read_text())
    assert plan["phase"] == "after recipe" and [h["phase"] for h in plan["history"]] == ["start", "after mine"]
    timings = json.loads((ws.root / "plan" / "timings.json").read_text())
    timed = [row["stage"] for row in timings["stages"]]
    assert timed == stages[1:-1]  # every stage but the plan itself and the report, in order
    assert all(row["estimate"] is not None and row["estimate"] > 0 for row in timings["stages"])
    assert "Time: plan against actual" in html
    assert "Time: plan against actual" in (ws.root / "report" / "report.md").read_text()
    second = run_pipeline(mini_beir, ws, tiny_config(compress=True))
    status = {s["stage"]: s["status"] for s in second.stages}
    assert (
        status["bench"] == status["recipe"] == status["train"] == status["eval"] == status["compress"] == "up to date"
    )
    assert status["index"] == "up to date"


def test_run_stops_when_training_will_not_pay(tmp_path, mini_beir):
    ws = Workspace(tmp_path / "ws")
    result = run_pipeline(mini_beir, ws, tiny_config(target=0.5))  # the baselines already reach it
    assert result.decision_before == "keep the baseline" and "not training" in result.stopped
    assert [s["stage"] for s in result.stages] == ["plan", "bench", "decide"]
    assert not (ws.root / "train").exists() and (ws.root / "report" / "report.html").is_file()


def test_run_cli_json(tmp_path, mini_beir):
    config = tmp_path / "domainfit.toml"
    config.write_text("[decide]\ntarget = 0.5\n")
    result = CliRunner().invoke(
        app, ["run", str(mini_beir), "--workspace", str(tmp_path / "ws"), "--config", str(config), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stopped"]


def test_run_refuses_a_budget_too_small_before_any_stage(tmp_path, mini_beir):
    ws = tmp_path / "ws"
    result = CliRunner().invoke(app, ["run", str(mini_beir), "--workspace", str(ws), "--budget", "2s"])
    assert result.exit_code == 2, result.output
    assert "cannot hold even the smallest plan" in result.output and "Traceback" not in result.output
    assert not (ws / "bench").exists()


def test_run_refuses_an_unreadable_budget(tmp_path, mini_beir):
    result = CliRunner().invoke(app, ["run", str(mini_beir), "--workspace", str(tmp_path / "ws"), "--budget", "soon"])
    assert result.exit_code == 2 and "--budget" in result.output and "not a duration" in result.output
