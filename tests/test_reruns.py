"""Change one input at a time and run the loop again: exactly the stages downstream of it run, the rest are skipped.

One workspace, one sequence of changes (each followed by ``run``): nothing
changed; a config value of one stage (``[eval] examples``); the model a stage
reads (the fine-tuned model, as if replaced); a config value early in the
loop (``[synth] max_documents``); a line of the corpus. The report always runs
again, since it shows the run's own timings; ``decide`` before training reads
synth's queries, which synth writes after it, so it runs again on the run
after synth's output changed.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import TINY_TRAIN, build_mini_dataset
from domainfit.config import Config
from domainfit.core.workspace import Workspace
from domainfit.data.beir import write_beir
from domainfit.stages.pipeline import run_pipeline

LOOP = ["bench", "decide-before", "synth", "mine", "recipe", "train", "eval", "decide-after", "index", "report"]


def config(**sections: dict) -> Config:
    """A small loop: few training steps, no recipe search, no forgetting check, no compression."""
    raw = {
        "train": {**TINY_TRAIN, "max_steps": 2},
        "eval": {"general": "none"},
        "recipe": {"search": False},
        "mine": {"range_min": 1, "range_max": 30, "negatives": 1},
        "pipeline": {"compress": False},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return Config.model_validate(raw)


def reran(data: Path, workspace: Workspace, cfg: Config) -> set[str]:
    """Run the loop; return the stages that ran (decide's two runs told apart, the planner left out)."""
    result = run_pipeline(data, workspace, cfg, train_anyway=True)
    statuses = [(s["stage"], s["status"]) for s in result.stages if s["stage"] != "plan"]
    names = iter(LOOP)
    ran = {next(names): status for _, status in statuses}
    assert set(ran) == set(LOOP), statuses
    return {name for name, status in ran.items() if status == "ran"}


def test_exactly_the_stages_downstream_of_a_change_run_again(tmp_path):
    data = write_beir(build_mini_dataset(), tmp_path / "data")
    workspace = Workspace(tmp_path / "ws")
    assert reran(data, workspace, config()) == set(LOOP)
    # synth wrote its queries after decide read the workspace: decide (before) runs once more, then nothing does
    assert reran(data, workspace, config()) == {"decide-before", "report"}
    assert reran(data, workspace, config()) == {"report"}
    # a config value of one stage: that stage and what reads its output
    assert reran(data, workspace, config(eval={"examples": 3})) == {"eval", "decide-after", "report"}
    # the model a stage loads (a file of the fine-tuned model changed in place): eval and what follows it
    recorded = workspace.stage_dir("train") / "model" / "domainfit_text.json"
    recorded.write_text(json.dumps({**json.loads(recorded.read_text()), "note": "replaced"}))
    assert reran(data, workspace, config(eval={"examples": 3})) == {"eval", "decide-after", "report"}
    # a config value early in the loop: synth and every stage after it that reads what it made
    later = config(eval={"examples": 3}, synth={"max_documents": 12})
    assert reran(data, workspace, later) == {"synth", "mine", "recipe", "train", "eval", "decide-after", "report"}
    assert reran(data, workspace, later) == {"decide-before", "report"}
    # a line of the corpus: every stage
    corpus = data / "corpus.jsonl"
    lines = corpus.read_text().splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "text": first["text"] + " Tokens are refreshed every hour."})
    corpus.write_text("\n".join(lines) + "\n")
    assert reran(data, workspace, later) == set(LOOP)
