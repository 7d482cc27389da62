"""``domainfit run``: the loop as a list of steps over one workspace.

`LOOP` lists the steps in order: the plan, bench, decide (before), synth,
mine, the plan again (after mine), recipe, the training run sized to the
budget, train, eval, decide (after), compress, index (the serving index of
the system the decision deploys) and report. A step is a stage
built from the run's state (its settings, and what earlier steps decided) and
run through the stage contract (`domainfit.stages.contract.run_stage`), so a
stage whose inputs did not change is skipped and re-running the loop redoes
only what is stale; or it is one of the planner's actions. The loop stops with
a clear message when the decision says not to train, unless ``train_anyway``
is set; the timings and the report are written either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.config import Config
from domainfit.core.workspace import Workspace
from domainfit.evaluation.decision import DATA, FINETUNE, SHIP, costed_as_trained
from domainfit.stages.contract import Outcome, Stage, run_stage

if TYPE_CHECKING:
    from domainfit.data.beir import BeirDataset
    from domainfit.train.config import TrainConfig

#: Called after each stage with (stage, status, seconds).
Listener = Callable[[str, str, float], None]


@dataclass
class PipelineResult:
    """What ran: per stage, "ran", "up to date" or "skipped: <why>", and seconds; the decisions; where the report is."""

    stages: list[dict[str, Any]] = field(default_factory=list)
    decision_before: str | None = None
    decision_after: str | None = None
    stopped: str | None = None
    report: str | None = None


@dataclass
class RunState:
    """The run so far: its inputs, the config as the plan sized it, and what earlier steps produced."""

    data: Path
    workspace: Workspace
    config: Config
    force: bool
    train_anyway: bool
    budget: float | None
    listener: Listener | None
    dataset: BeirDataset
    result: PipelineResult = field(default_factory=PipelineResult)
    started: float = field(default_factory=time.perf_counter)
    outcomes: dict[str, Any] = field(default_factory=dict)  # the latest result of each step, by name
    plan: Any = None
    probe: Any = None
    train: TrainConfig | None = None

    @property
    def limit(self) -> int:
        """The largest accepted JSONL record, in bytes."""
        return self.config.data.max_line_mib << 20

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started

    def say(self, line: str) -> None:
        """Pass one line of information (the plan) to the listener, as the status of a pseudo-stage."""
        if self.listener:
            self.listener("plan", line.removeprefix("plan: "), 0.0)

    def note(self, stage: str, status: str, seconds: float = 0.0) -> None:
        """Record a stage's status."""
        self.result.stages.append({"stage": stage, "status": status, "seconds": round(seconds, 1)})
        if self.listener:
            self.listener(stage, status, seconds)


@dataclass(frozen=True)
class Step:
    """One step of the loop.

    ``run`` does the step and returns its result (an `Outcome` for a stage);
    ``then`` sees that result once the step is recorded (to print the plan);
    ``recorded``: the step appears in the run's list of stages and timings;
    ``when``: the step runs only when this holds; ``always``: the step still
    runs, unrecorded, after the loop stopped early.
    """

    name: str
    run: Callable[[RunState], Any]
    then: Callable[[RunState, Any], None] | None = None
    recorded: bool = True
    when: Callable[[RunState], bool] | None = None
    always: bool = False


def stage_step(
    name: str,
    build: Callable[[RunState], Stage[Any]],
    *,
    after: Callable[[RunState, Any], None] | None = None,
    when: Callable[[RunState], bool] | None = None,
    always: bool = False,
) -> Step:
    """Return the step that builds a stage from the run's state and runs it through the contract.

    ``after(state, result)`` sees the stage's result (a decision, a recipe).
    """

    def run(state: RunState) -> Outcome[Any]:
        outcome = run_stage(build(state), force=state.force)
        state.outcomes[name] = outcome.result
        if after is not None:
            after(state, outcome.result)
        return outcome

    return Step(name, run, when=when, always=always)


# ----------------------------------------------------------------------------------------- the stages


def _bench(state: RunState) -> Stage[Any]:
    from domainfit.stages.bench import BenchStage

    c = state.config
    return BenchStage(state.workspace, state.data, c.bench, max_line_bytes=state.limit, chunking=c.chunking,
                      text=c.text)  # fmt: skip


def _decide(when: str) -> Callable[[RunState], Stage[Any]]:
    def build(state: RunState) -> Stage[Any]:
        from domainfit.stages.decide import DecideStage

        c = state.config
        settings = costed_as_trained(c.decide, c.train) if when == "before" else c.decide
        return DecideStage(
            state.workspace, state.data, settings, when, max_line_bytes=state.limit, text=c.text, train=c.train
        )

    return build


def _synth(state: RunState) -> Stage[Any]:
    from domainfit.stages.synth import SynthStage

    c = state.config
    return SynthStage(state.workspace, state.data, c.synth, max_line_bytes=state.limit, chunking=c.chunking,
                      text=c.text)  # fmt: skip


def _mine(state: RunState) -> Stage[Any]:
    from domainfit.stages.mine import MineStage

    c = state.config
    return MineStage(state.workspace, state.data, c.mine, max_line_bytes=state.limit, chunking=c.chunking,
                     text=c.text)  # fmt: skip


def _recipe(state: RunState) -> Stage[Any]:
    from domainfit.stages.recipe import RecipeStage

    return RecipeStage(state.workspace, state.data, state.config, max_line_bytes=state.limit)


def _train(state: RunState) -> Stage[Any]:
    from domainfit.stages.train import TrainStage

    c = state.config
    train = state.train if state.train is not None else c.train
    return TrainStage(state.workspace, state.data, train, chunking=c.chunking, max_line_bytes=state.limit,
                      text=c.text)  # fmt: skip


def _eval(state: RunState) -> Stage[Any]:
    from domainfit.stages.eval import EvalStage

    c = state.config
    return EvalStage(state.workspace, state.data, c.eval, chunking=c.chunking, max_line_bytes=state.limit,
                     text=c.text)  # fmt: skip


def _compress(state: RunState) -> Stage[Any]:
    """Compress the shipped model when the decision after training says ship, else ``[compress] model``."""
    from domainfit.stages.compress import CompressStage

    c = state.config
    shipped = state.result.decision_after == SHIP
    settings = c.compress.model_copy(update={"model": str(state.workspace.stage_dir("train") / "model")})
    return CompressStage(state.workspace, state.data, settings if shipped else c.compress,
                         max_line_bytes=state.limit, text=c.text)  # fmt: skip


def _index(state: RunState) -> Stage[Any]:
    """Index the system the decision after training deploys (`domainfit.stages.index.deployed_system`)."""
    from domainfit.stages.index import IndexStage

    c = state.config
    return IndexStage(state.workspace, state.data, c.index, c.eval, max_line_bytes=state.limit, text=c.text)


def _report(state: RunState) -> Stage[Any]:
    from domainfit.stages.registry import STAGES
    from domainfit.stages.report import ReportStage

    return ReportStage(state.workspace, STAGES)


def _before(state: RunState, decision: Any) -> None:
    """Record the decision before training; stop the loop when it says training will not pay."""
    state.result.decision_before = decision.recommendation
    if decision.recommendation not in (FINETUNE, DATA) and not state.train_anyway:
        state.result.stopped = (
            f"the decision is '{decision.recommendation}': not training (use --train-anyway to override)"
        )


def _after(state: RunState, decision: Any) -> None:
    """Record the decision after training."""
    state.result.decision_after = decision.recommendation


def _reported(state: RunState, paths: Any) -> None:
    """Record where the report is."""
    state.result.report = str(paths[0])


# ----------------------------------------------------------------------------------------- the planner


def _plan_start(state: RunState) -> Any:
    """Plan the whole run before bench (probe, estimate, fit the budget); the config takes the plan's sizes."""
    from domainfit.stages.plan import make_plan

    plan, config, probe = make_plan(state.dataset, state.config, state.workspace, budget=state.budget, spent=0.0,
                                    phase="start", force=state.force)  # fmt: skip
    state.plan, state.config, state.probe = plan, config, probe
    return plan


def _print_plan(state: RunState, plan: Any) -> None:
    """Print the plan's lines (its total against the budget, the stages' minutes, what the budget changed)."""
    from domainfit.stages.plan import plan_lines

    for line in plan_lines(plan):
        state.say(line)


def _plan_after_mine(state: RunState) -> Any:
    """Plan the rest of the run again once the synthetic pairs are counted."""
    from domainfit.stages.plan import make_plan

    plan, config, _ = make_plan(state.dataset, state.config, state.workspace, budget=state.budget,
                                spent=state.elapsed(), phase="after mine", synthetic=_synthetic_pairs(state.workspace),
                                probe=state.probe, done=("mine",))  # fmt: skip
    state.plan, state.config = plan, config
    return plan


def _synthetic_pairs(workspace: Workspace) -> int:
    """Synthetic pairs in mine's dataset (0 when mine wrote none)."""
    from domainfit.train.origins import mined_examples

    folder = workspace.stage_dir("mine")
    return mined_examples(folder).counts().get("synthetic", 0) if (folder / "dataset").is_dir() else 0


def _size_train(state: RunState) -> Any:
    """Size ``[train]``: the recipe's choice, its steps cut to what the budget has left at the pilots' speed.

    Prints the training plan and writes the phase "after recipe" of the plan.
    """
    from domainfit.stages.plan import refit_train, update_train
    from domainfit.stages.recipe import plan_line, trained_config

    chosen, config, budget, probe = state.outcomes["recipe"], state.config, state.budget, state.probe
    train_plan = chosen.plan or {}
    measured = train_plan.get("seconds_per_step")
    if budget is not None and config.train.max_steps <= 0 and train_plan.get("steps"):
        config = config.model_copy(update={"train": config.train.model_copy(update={"max_steps": train_plan["steps"]})})
        config.train.model_fields_set.discard("max_steps")
    config, changes = refit_train(state.plan, config, probe, measured, budget, state.elapsed())
    train = trained_config(config.train, chosen.train_overrides)
    if (line := plan_line(chosen)) is not None:
        state.say(line)
    for change in changes:
        state.say(f"budget: {change}")
    if measured is not None:
        from domainfit.budget.fit import evaluations

        evals = evaluations(train.max_steps, train.eval_steps)
        seconds = train.max_steps * measured + evals * float(train_plan.get("seconds_per_evaluation") or 0.0)
        update_train(state.workspace, state.plan, seconds + probe.model_load_seconds, changes, state.elapsed())
    state.train = train
    return train


def _timings(state: RunState) -> None:
    """Write the run's actual seconds next to the plan's estimates (``plan/timings.json``)."""
    from domainfit.stages.plan import record_timings

    record_timings(state.workspace, state.result.stages, state.elapsed())


#: The loop, in order.
LOOP: tuple[Step, ...] = (
    Step("plan", _plan_start, then=_print_plan),
    stage_step("bench", _bench),
    stage_step("decide", _decide("before"), after=_before),
    stage_step("synth", _synth),
    stage_step("mine", _mine),
    Step("plan", _plan_after_mine, then=_print_plan, recorded=False),
    stage_step("recipe", _recipe),
    Step("train plan", _size_train, recorded=False),
    stage_step("train", _train),
    stage_step("eval", _eval),
    stage_step("decide", _decide("after"), after=_after),
    stage_step("compress", _compress, when=lambda state: state.config.pipeline.compress),
    stage_step("index", _index, when=lambda state: state.config.pipeline.index),
    Step("timings", _timings, recorded=False, always=True),
    stage_step("report", _report, after=_reported, always=True),
)


def _step(state: RunState, step: Step, record: bool) -> None:
    """Run one step, timing it and recording its status (a stage's: "ran" or "up to date")."""
    start = time.perf_counter()
    out = step.run(state)
    if record:
        status = "up to date" if isinstance(out, Outcome) and out.up_to_date else "ran"
        state.note(step.name, status, time.perf_counter() - start)
    if step.then is not None:
        step.then(state, out)


def run_steps(state: RunState, steps: tuple[Step, ...] = LOOP) -> PipelineResult:
    """Run ``steps`` in order over the run's state; after a stop, only the ``always`` steps run (unrecorded)."""
    for step in steps:
        stopped = state.result.stopped is not None
        if (stopped and not step.always) or (step.when is not None and not step.when(state)):
            continue
        _step(state, step, step.recorded and not stopped)
    return state.result


def run_pipeline(
    data: Path,
    workspace: Workspace,
    config: Config,
    *,
    force: bool = False,
    train_anyway: bool = False,
    listener: Listener | None = None,
    budget: float | None = None,
) -> PipelineResult:
    """Run every step of `LOOP` over ``workspace``; return what ran and what was decided.

    Inputs: the BEIR folder, the workspace, the resolved config, ``force`` to
    re-run stages whose inputs did not change, ``train_anyway`` to train even
    when the decision says it will not pay, an optional progress listener and
    the time budget in seconds (None: ``[run] budget``, or no budget). Every
    input of every stage is checked before the first one runs.
    """
    from domainfit.stages.preflight import check_pipeline_inputs

    workspace.attach_data(data)  # a workspace inside, above or equal to the data is refused
    workspace.check()
    dataset = check_pipeline_inputs(data, config)  # every input of every stage, before the first model loads
    with workspace.lock():  # one lock for the whole run; every stage re-enters it
        state = RunState(data, workspace, config, force, train_anyway,
                         budget if budget is not None else config.run.budget_seconds(), listener, dataset)  # fmt: skip
        return run_steps(state)
