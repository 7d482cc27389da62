"""Run one step of ``domainfit migrate`` by name (the steps are in `domainfit.stages.migrate_steps` and ``_switch``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from domainfit.core.errors import UsageError
from domainfit.core.workspace import Workspace
from domainfit.stages.contract import run_stage
from domainfit.stages.migrate import STEPS, MigrateStage, MigrateStep, StepResult
from domainfit.stages.migrate_steps import BackfillStep, BridgeStep, PlanStep
from domainfit.stages.migrate_switch import CompareStep, PromoteStep, RollbackStep

if TYPE_CHECKING:
    from domainfit.config import Config


def steps() -> dict[str, type[MigrateStep]]:
    """Return every step's stage class by step name."""
    classes: tuple[type[MigrateStep], ...] = (
        PlanStep,
        BackfillStep,
        BridgeStep,
        CompareStep,
        PromoteStep,
        RollbackStep,
    )
    return {c.step: c for c in classes}


def run_migrate(
    step: str, workspace: Workspace, data: Path | None, config: Config, *, force: bool = False
) -> StepResult:
    """Run one step of the migration (then refresh the report section); return its result.

    ``force``: re-run the step even when nothing changed, and its own override
    (``promote`` despite a no-go from compare, ``rollback`` over a pointer that
    moved since the promotion). Raises `UsageError` for an unknown step or a
    step run out of order, `InputError` for bad data; nothing is written then.
    """
    classes = steps()
    if step not in classes:
        raise UsageError(f"unknown migrate step {step!r}; use one of {', '.join(STEPS)}")
    stage = classes[step](workspace, data, config, force=force)
    result = run_stage(stage, force=force).result
    run_stage(MigrateStage(workspace, config.migrate))
    return result
