"""Every registered stage goes through the stage contract, and passes the same contract test.

The loop runs once over the mini BEIR folder (with compress and index, then
cost and calibrate); then, for each registered stage: a second run with nothing
changed is skipped; changing any one of its declared inputs makes it run
again; a run that fails leaves its folder exactly as it was; the workspace
lock is held while it computes and writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import TINY_TRAIN, build_mini_dataset
from domainfit.config import Config
from domainfit.core.errors import InputError
from domainfit.core.workspace import Workspace
from domainfit.data.beir import write_beir
from domainfit.stages.contract import MEASURE as MEASURE_PANEL
from domainfit.stages.contract import OPERATE, PREPARE, SHIP, TRAIN, Stage, run_stage
from domainfit.stages.inputs import Input, Value
from domainfit.stages.manifest import read_manifest
from domainfit.stages.pipeline import run_pipeline
from domainfit.stages.registry import STAGES

KINDS = {"data", "config", "model", "upstream", "value"}


def tiny_config() -> Config:
    """The smallest loop that runs every stage on the mini BEIR folder."""
    return Config.model_validate(
        {
            "train": {**TINY_TRAIN, "max_steps": 2},
            "pipeline": {"compress": True},
            "recipe": {"search": False},  # the settings read from the data, no pilots
            "mine": {"range_min": 1, "range_max": 30, "negatives": 1},
            "compress": {"dims": [64], "precisions": ["float32", "int8"], "pq": []},
            "calibrate": {"configurations": ["full/float32", "full/int8"]},
            "cost": {"probe_documents": 4},
        }
    )


def _train(workspace: Workspace, data: Path, c: Config, **common: Any) -> Stage[Any]:
    """The train stage with the recipe's choice applied, as `run` trains."""
    from domainfit.stages.recipe import trained_config
    from domainfit.stages.train import TrainStage

    overrides = json.loads((workspace.stage_dir("recipe") / "search.json").read_text())["train_overrides"]
    return TrainStage(workspace, data, trained_config(c.train, overrides), chunking=c.chunking, **common)


def _compress(workspace: Workspace, data: Path, c: Config, **common: Any) -> Stage[Any]:
    """The compress stage of the shipped model (or of ``[compress] model``), as `run` compresses."""
    from domainfit.evaluation.decision import SHIP as SHIPPED
    from domainfit.stages.compress import CompressStage

    after = json.loads((workspace.stage_dir("decide") / "decision-after.json").read_text())
    model = str(workspace.stage_dir("train") / "model") if after["recommendation"] == SHIPPED else c.compress.model
    return CompressStage(workspace, data, c.compress.model_copy(update={"model": model}), **common)


def build(name: str, workspace: Workspace, data: Path, config: Config) -> Stage[Any]:
    """Build a registered stage the way ``domainfit run`` (or its command) builds it."""
    from domainfit.evaluation.decision import costed_as_trained
    from domainfit.stages.bench import BenchStage
    from domainfit.stages.calibrate import CalibrateStage
    from domainfit.stages.cost import CostStage
    from domainfit.stages.decide import DecideStage
    from domainfit.stages.eval import EvalStage
    from domainfit.stages.index import IndexStage
    from domainfit.stages.migrate import MigrateStage
    from domainfit.stages.mine import MineStage
    from domainfit.stages.recipe import RecipeStage
    from domainfit.stages.report import ReportStage
    from domainfit.stages.synth import SynthStage

    c, limit = config, config.data.max_line_mib << 20
    common: dict[str, Any] = {"max_line_bytes": limit, "text": c.text}
    ws, chunking = workspace, c.chunking
    builders = {
        "bench": lambda: BenchStage(ws, data, c.bench, chunking=chunking, **common),
        "decide-before": lambda: DecideStage(ws, data, costed_as_trained(c.decide, c.train), "before", **common),
        "decide-after": lambda: DecideStage(ws, data, c.decide, "after", **common),
        "synth": lambda: SynthStage(ws, data, c.synth, chunking=chunking, **common),
        "mine": lambda: MineStage(ws, data, c.mine, chunking=chunking, **common),
        "recipe": lambda: RecipeStage(ws, data, c, max_line_bytes=limit),
        "train": lambda: _train(ws, data, c, **common),
        "eval": lambda: EvalStage(ws, data, c.eval, chunking=chunking, **common),
        "compress": lambda: _compress(ws, data, c, **common),
        "cost": lambda: CostStage(ws, data, c.cost, **common),
        "calibrate": lambda: CalibrateStage(ws, data, c.calibrate, **common),
        "index": lambda: IndexStage(ws, data, c.index, c.eval, **common),
        "migrate": lambda: MigrateStage(ws, c.migrate),
        "report": lambda: ReportStage(ws, STAGES),
    }
    return builders[name]()


#: Each registered stage (decide in both of its parts), as `build` names them. ``monitor`` is left out: a
#: monitoring run measures the live service and is never up to date (its own tests: tests/test_monitor_stage.py).
CASES = [s.name for s in STAGES if s.name not in ("decide", "monitor")] + ["decide-before", "decide-after"]


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> tuple[Path, Workspace, Config]:
    """One run of the whole loop (and of cost and calibrate) over the mini BEIR folder."""
    root = tmp_path_factory.mktemp("contract")
    data = write_beir(build_mini_dataset(), root / "data")
    workspace, config = Workspace(root / "ws"), tiny_config()
    run_pipeline(data, workspace, config, train_anyway=True)
    for name in ("cost", "calibrate"):
        run_stage(build(name, workspace, data, config))
    return data, workspace, config


class Recomputed(Exception):
    """Raised by a stage's compute in these tests: it was called, so the stage would run again."""


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a folder with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_stage_is_registered_once_with_a_command_a_panel_and_report_sections():
    names = [s.name for s in STAGES]
    assert len(set(names)) == len(names)
    assert names[:2] == ["bench", "decide"] and names[-1] == "report"
    panels = {PREPARE, MEASURE_PANEL, TRAIN, SHIP, OPERATE}
    for stage in STAGES:
        assert stage.command is None or stage.panel in panels, stage.name
        assert all(section.markdown.endswith(".md") for section in stage.report), stage.name
    commands = [s.command for s in STAGES if s.command]
    assert len(set(commands)) == len(commands) and "recipe" not in commands  # recipe runs inside `run` only


def test_the_command_line_lists_the_stage_commands_in_loop_order_by_panel():
    from domainfit.cli.app import commands

    listed = commands()
    assert [c[0] for c in listed] == ["validate", "split", "bench", "decide", "synth", "mine", "train", "eval",
                                      "compress", "cost", "calibrate", "index", "migrate", "monitor", "report",
                                      "serve", "run", "version"]  # fmt: skip
    by_name = {name: panel for name, _, panel in listed}
    assert by_name["bench"] == MEASURE_PANEL and by_name["train"] == TRAIN and by_name["calibrate"] == SHIP


@pytest.mark.parametrize("name", CASES)
def test_the_stage_declares_its_inputs(loop, name):
    data, workspace, config = loop
    stage = build(name, workspace, data, config)
    stage.check()
    inputs = stage.inputs()
    assert inputs and all(isinstance(item, Input) and item.kind in KINDS for item in inputs.values()), inputs
    kinds = {item.kind for item in inputs.values()}
    if stage.reads or name == "report":  # what it reads of earlier stages: their artifacts, or the model they made
        assert kinds & {"upstream", "model"}, (name, kinds)
    if name not in ("report", "decide-after", "migrate"):  # those read only the workspace
        assert "data" in kinds and "config" in kinds, (name, kinds)


@pytest.mark.parametrize("name", CASES)
def test_the_stage_skips_when_unchanged_and_runs_again_when_any_declared_input_changes(loop, name, monkeypatch):
    data, workspace, config = loop
    run_stage(build(name, workspace, data, config))  # settles what ran before a later stage wrote (decide before)
    again = run_stage(build(name, workspace, data, config))
    assert again.up_to_date, name
    stage_class = type(build(name, workspace, data, config))
    seen: dict[str, bool] = {}

    def compute(self: Stage[Any], out: Path, previous: Any) -> Any:
        (out / "half-written").write_text("x")
        seen["locked"] = workspace.holds_lock()
        raise Recomputed

    monkeypatch.setattr(stage_class, "compute", compute)
    assert run_stage(build(name, workspace, data, config)).up_to_date  # compute is not called when unchanged
    stage = build(name, workspace, data, config)
    stage.check()
    declared = stage.inputs()
    folder = workspace.stage_dir(stage.name)
    before = _snapshot(folder)
    original = stage_class.inputs
    for changed in declared:

        def inputs(self: Stage[Any], changed: str = changed) -> dict[str, Input]:
            found = original(self)
            found[changed] = Value(["changed", found[changed].fingerprint()], of=found[changed].kind)
            return found

        monkeypatch.setattr(stage_class, "inputs", inputs)
        seen.clear()
        with pytest.raises(Recomputed):
            run_stage(build(name, workspace, data, config))
        assert seen == {"locked": True}, (name, changed)  # the lock is held while the stage writes
        assert _snapshot(folder) == before, (name, changed)  # a failed run leaves the folder as it was
        assert not list(workspace.root.glob(f".{stage.name}.*")), (name, changed)  # and no staged folder
    monkeypatch.setattr(stage_class, "inputs", original)
    assert run_stage(build(name, workspace, data, config)).up_to_date  # the inputs as they are: up to date again


@pytest.mark.parametrize("name", [n for n in CASES if n not in ("train", "compress")])  # built from upstream records
def test_a_failed_first_run_leaves_no_workspace(loop, name, tmp_path, monkeypatch):
    """The stage fails in a new workspace (its compute raises, or its check finds an upstream stage missing)."""
    data, workspace, config = loop
    stage_class = type(build(name, workspace, data, config))

    def compute(self: Stage[Any], out: Path, previous: Any) -> Any:
        (out / "half-written").write_text("x")
        raise Recomputed

    monkeypatch.setattr(stage_class, "compute", compute)
    fresh = Workspace(tmp_path / "fresh")
    with pytest.raises((Recomputed, InputError)):
        run_stage(build(name, fresh, data, config))
    assert not fresh.root.exists(), sorted(p.name for p in fresh.root.iterdir())


def test_a_manifest_of_another_format_is_not_trusted(loop):
    data, workspace, config = loop
    folder = workspace.stage_dir("bench")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert read_manifest(folder, "bench") is not None
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    assert read_manifest(folder, "bench") is None
    rerun = run_stage(build("bench", workspace, data, config))
    assert not rerun.up_to_date and json.loads((folder / "manifest.json").read_text())["format_version"] == 1
