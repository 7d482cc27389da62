"""Every stage of the loop, in loop order: what the command line, ``run``, the report and the tests go through.

Each entry is a `domainfit.stages.contract.Stage` subclass declaring its inputs,
its CLI command and help panel, and its report sections. Adding a stage is
adding its module and one line here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domainfit.core.workspace import Workspace
from domainfit.stages.bench import BenchStage
from domainfit.stages.calibrate import CalibrateStage
from domainfit.stages.compress import CompressStage
from domainfit.stages.contract import Stage, run_stage
from domainfit.stages.cost import CostStage
from domainfit.stages.decide import DecideStage
from domainfit.stages.eval import EvalStage
from domainfit.stages.index import IndexStage
from domainfit.stages.migrate import MigrateStage
from domainfit.stages.mine import MineStage
from domainfit.stages.monitor import MonitorStage
from domainfit.stages.recipe import RecipeStage
from domainfit.stages.report import ReportStage
from domainfit.stages.synth import SynthStage
from domainfit.stages.train import TrainStage

#: The stages in the order of the loop.
STAGES: tuple[type[Stage[Any]], ...] = (
    BenchStage,
    DecideStage,
    SynthStage,
    MineStage,
    RecipeStage,
    TrainStage,
    EvalStage,
    CompressStage,
    CostStage,
    CalibrateStage,
    IndexStage,
    MigrateStage,
    MonitorStage,
    ReportStage,
)


def stage_named(name: str) -> type[Stage[Any]]:
    """Return the registered stage of that name (KeyError when there is none)."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(name)


def build_report(workspace: Workspace) -> tuple[Path, Path]:
    """Render the report of a workspace from every registered stage that ran; return (html path, markdown path)."""
    return run_stage(ReportStage(workspace, STAGES)).result
