"""``domainfit run``: bench, decide, synth, mine, recipe, train, eval, decide, compress and report over one workspace.

Each stage skips itself when its inputs did not change (content hashes in its
manifest), so re-running the pipeline only redoes what is stale. The pipeline
stops with a clear message when the decision says not to train, unless
``train_anyway`` is set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.config import Config
from domainfit.core.workspace import Workspace

if TYPE_CHECKING:
    from domainfit.data.beir import BeirDataset
from domainfit.stages.decide import DATA, FINETUNE, SHIP, costed_as_trained, run_decide

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


class _Recorder:
    """Runs stages, timing them and recording their status."""

    def __init__(self, result: PipelineResult, listener: Listener | None) -> None:
        self.result, self.listener = result, listener
        self.started = time.perf_counter()

    def __call__(self, stage: str, func: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = func()
        status = "up to date" if getattr(out, "up_to_date", False) else "ran"
        self.note(stage, status, time.perf_counter() - start)
        return out

    def say(self, line: str) -> None:
        """Pass one line of information (the plan) to the listener, as the status of a pseudo-stage."""
        if self.listener:
            self.listener("plan", line.removeprefix("plan: "), 0.0)

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started

    def note(self, stage: str, status: str, seconds: float = 0.0) -> None:
        """Record a stage's status."""
        self.result.stages.append({"stage": stage, "status": status, "seconds": round(seconds, 1)})
        if self.listener:
            self.listener(stage, status, seconds)


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
    """Run every stage in order over ``workspace``; return what ran and what was decided.

    Inputs: the BEIR folder, the workspace, the resolved config, ``force`` to
    re-run stages whose inputs did not change, ``train_anyway`` to train even
    when the decision says it will not pay, an optional progress listener and
    the time budget in seconds (None: ``[run] budget``, or no budget).
    """
    workspace.attach_data(data)  # a workspace inside, above or equal to the data is refused
    workspace.check()
    check_pipeline_inputs(data, config)  # every input of every stage, before the first model loads
    with workspace.lock():  # one lock for the whole run; every stage re-enters it
        return _run_stages(
            data,
            workspace,
            config,
            force=force,
            train_anyway=train_anyway,
            step=_Recorder(PipelineResult(), listener),
            budget=budget if budget is not None else config.run.budget_seconds(),
        )


def _run_stages(
    data: Path,
    workspace: Workspace,
    config: Config,
    *,
    force: bool,
    train_anyway: bool,
    step: _Recorder,
    budget: float | None,
) -> PipelineResult:
    """Run the stages in loop order under the run's lock; return what ran and what was decided.

    Stage modules are imported directly: an ImportError inside one is an error, never a skipped stage.
    """
    from domainfit.data.beir import load_beir
    from domainfit.stages.bench import run_bench
    from domainfit.stages.compress import run_compress
    from domainfit.stages.eval import run_eval
    from domainfit.stages.mine import run_mine
    from domainfit.stages.plan import make_plan, plan_lines, record_timings
    from domainfit.stages.recipe import run_recipe
    from domainfit.stages.report import build_report
    from domainfit.stages.synth import run_synth
    from domainfit.stages.train import run_train

    result = step.result
    limit = config.data.max_line_mib << 20
    text = config.text
    dataset = load_beir(data, max_line_bytes=limit, text=text)
    plan, config, probe = step(
        "plan", lambda: make_plan(dataset, config, workspace, budget=budget, spent=0.0, phase="start", force=force)
    )
    for line in plan_lines(plan):
        step.say(line)
    step(
        "bench",
        lambda: run_bench(
            data, workspace, config.bench, force=force, max_line_bytes=limit, chunking=config.chunking, text=text
        ),
    )
    costed = costed_as_trained(config.decide, config.train)
    before = step("decide", lambda: run_decide(data, workspace, costed, "before", max_line_bytes=limit, text=text))
    result.decision_before = before.recommendation
    if before.recommendation not in (FINETUNE, DATA) and not train_anyway:
        result.stopped = f"the decision is '{before.recommendation}': not training (use --train-anyway to override)"
        record_timings(workspace, result.stages, step.elapsed())
        result.report = str(build_report(workspace)[0])
        return result
    step(
        "synth",
        lambda: run_synth(
            data, workspace, config.synth, force=force, max_line_bytes=limit, chunking=config.chunking, text=text
        ),
    )
    step(
        "mine",
        lambda: run_mine(
            data, workspace, config.mine, force=force, max_line_bytes=limit, chunking=config.chunking, text=text
        ),
    )
    plan, config, _ = make_plan(dataset, config, workspace, budget=budget, spent=step.elapsed(), phase="after mine",
                                synthetic=_synthetic_pairs(workspace), probe=probe, done=("mine",))  # fmt: skip
    for line in plan_lines(plan):
        step.say(line)
    chosen = step("recipe", lambda: run_recipe(data, workspace, config, force=force, max_line_bytes=limit))
    train = _sized_train(workspace, plan, config, chosen, probe, budget, step)
    step(
        "train",
        lambda: run_train(
            data, workspace, train, force=force, chunking=config.chunking, max_line_bytes=limit, text=text
        ),
    )
    step(
        "eval",
        lambda: run_eval(
            data, workspace, config.eval, force=force, chunking=config.chunking, max_line_bytes=limit, text=text
        ),
    )
    after = step("decide", lambda: run_decide(data, workspace, config.decide, "after", max_line_bytes=limit, text=text))
    result.decision_after = after.recommendation
    if config.pipeline.compress:
        chosen = str(workspace.stage_dir("train") / "model") if after.recommendation == SHIP else None
        settings = config.compress.model_copy(update={"model": chosen}) if chosen else config.compress
        step(
            "compress",
            lambda: run_compress(data, workspace, settings, force=force, max_line_bytes=limit, text=text),
        )
    record_timings(workspace, result.stages, step.elapsed())
    result.report = str(step("report", lambda: build_report(workspace))[0])
    return result


def _synthetic_pairs(workspace: Workspace) -> int:
    """Synthetic pairs in mine's dataset (0 when mine wrote none)."""
    from domainfit.train.origins import mined_examples

    folder = workspace.stage_dir("mine")
    return mined_examples(folder).counts().get("synthetic", 0) if (folder / "dataset").is_dir() else 0


def _sized_train(
    workspace: Workspace, plan: Any, config: Config, chosen: Any, probe: Any, budget: float | None, step: _Recorder
) -> Any:
    """Return ``[train]`` with the recipe's choice, its steps cut to what the budget has left at the pilots' speed.

    Prints the training plan and writes the phase "after recipe" of the plan.
    """
    from domainfit.stages.plan import refit_train, update_train
    from domainfit.stages.recipe import plan_line, trained_config

    train_plan = chosen.plan or {}
    measured = train_plan.get("seconds_per_step")
    if budget is not None and config.train.max_steps <= 0 and train_plan.get("steps"):
        config = config.model_copy(update={"train": config.train.model_copy(update={"max_steps": train_plan["steps"]})})
        config.train.model_fields_set.discard("max_steps")
    config, changes = refit_train(plan, config, probe, measured, budget, step.elapsed())
    train = trained_config(config.train, chosen.train_overrides)
    if (line := plan_line(chosen)) is not None:
        step.say(line)
    for change in changes:
        step.say(f"budget: {change}")
    if measured is not None:
        evals = 1 + train.max_steps // max(1, train.eval_steps)
        seconds = train.max_steps * measured + evals * float(train_plan.get("seconds_per_evaluation") or 0.0)
        update_train(workspace, plan, seconds + probe.model_load_seconds, changes, step.elapsed())
    return train


def check_pipeline_inputs(data: Path | str, config: Config, max_line_bytes: int | None = None) -> BeirDataset:
    """Check every input ``domainfit run`` reads, before its first stage; return the loaded dataset.

    The BEIR folder (every file), the splits the stages evaluate (``bench.split``,
    ``eval.split`` and, when the pipeline compresses, ``compress.split``), the
    general-domain sets of the forgetting checks (``eval.general``,
    ``train.general_pairs``), the training pair file (``train.dataset``) and
    the click log (``synth.clicks.path``). Without this, a bad file read by a
    late stage (``eval`` runs after training) would fail only after hours of work.
    Raises `InputError` (``file:line: field: message``) on the first problem.
    """
    from domainfit.data.beir import load_beir
    from domainfit.data.general_set import general_dataset, general_path
    from domainfit.data.jsonl import MAX_LINE_BYTES
    from domainfit.data.judged import check_evaluated_split
    from domainfit.data.pairs import read_pairs
    from domainfit.synth.clicks import read_click_log

    limit = max_line_bytes if max_line_bytes is not None else config.data.max_line_mib << 20
    root = Path(data).expanduser().resolve()
    dataset = load_beir(root, max_line_bytes=limit or MAX_LINE_BYTES, text=config.text)
    check_evaluated_split(dataset, config.bench.split, root / "qrels", "bench.split")
    check_evaluated_split(dataset, config.eval.split, root / "qrels", "eval.split")
    if config.pipeline.compress:
        check_evaluated_split(dataset, config.compress.split, root / "qrels", "compress.split")
    if config.eval.general and config.eval.general.lower() != "none":
        general_dataset(config.eval.general, config.text)
    if config.train.general_pairs and (config.train.general_share > 0 or config.train.regularize != "none"):
        read_pairs(general_path(config.train.general_pairs), config.text)
    if config.train.dataset and not Path(config.train.dataset).expanduser().is_dir():  # folders are saved datasets
        read_pairs(config.train.dataset, config.text)
    if config.synth.clicks.path is not None:
        read_click_log(Path(config.synth.clicks.path), dataset.corpus, limit)
    return dataset
