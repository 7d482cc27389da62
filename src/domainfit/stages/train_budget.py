"""``domainfit train --budget``: the one training run, planned and fitted as ``run`` plans its train stage.

The workload is counted as ``run`` counts it (`domainfit.stages.plan.count_workload`)
with what ``train`` itself will do: its own examples (mine's dataset at its
synthetic share, a pair file, or the train qrels), by origin; its window,
batch and hard negatives; nothing to generate and no recipe search. The probe
is the workspace's last one of the same model, batches and windows (with
``--force`` it is measured again), else measured on these examples. The fit
is `domainfit.budget.fit.fit_to_budget` over the stage ``train`` only: dev
evaluations down to three, then two, then fewer dev queries (sampled down to
the floor), then fewer steps. The plan is written to ``plan/plan.json``
(phase ``train``) and, once trained, the actual time beside the estimate to
``plan/timings.json``, as ``run`` records its stages.

Example::

    plan, config = plan_train(data, workspace, config, budget=1800.0)
    ... train with config.train ...
    line = record_train(workspace, "ran", seconds)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from domainfit.budget.duration import format_minutes
from domainfit.budget.estimate import Workload
from domainfit.budget.fit import Schedule
from domainfit.budget.probe import Probe, corpus_lengths, sample
from domainfit.core.errors import UsageError
from domainfit.stages.plan import (
    Plan,
    apply_overrides,
    count_workload,
    encode_window,
    fit_plan,
    plan_probe,
    read_plan,
    record_timings,
    write_plan,
)
from domainfit.train.speed import GROUP

if TYPE_CHECKING:
    from domainfit.config import Config
    from domainfit.core.workspace import Workspace
    from domainfit.data.beir import BeirDataset
    from domainfit.train.origins import MinedExamples

#: The phase ``train --budget`` writes (a plan of its own, not a phase of a run).
PHASE = "train"
#: The stages ``train`` runs, of the loop's.
ONLY = ("train",)
#: Training batches' worth of examples the probe's steps are drawn from: one mega-batch of the length
#: grouping (`domainfit.train.speed.GROUP`), so the probe's batches pad as the trainer's do.
PROBE_BATCHES = GROUP


def train_examples(workspace: Workspace, dataset: BeirDataset, config: Config) -> MinedExamples:
    """Return the examples ``train`` will train on, with their origins (mine's dataset at ``synthetic_share``)."""
    from domainfit.stages.recipe import _examples
    from domainfit.train.origins import MinedExamples, share_indices

    found = _examples(workspace, dataset, config.train, config.text)
    if config.train.synthetic_share is None:
        return found
    kept = share_indices(found.origins, config.train.synthetic_share, config.train.seed)
    return MinedExamples([found.examples[i] for i in kept], [found.origins[i] for i in kept])


def train_workload(
    dataset: BeirDataset, config: Config, examples: MinedExamples, lengths: list[int]
) -> tuple[Workload, Schedule]:
    """Count what ``train`` will do, as ``run`` counts its train stage; no pilots (``train`` runs no search).

    Inputs: the dataset, the config, the training examples by origin and the
    token lengths of a sample of the corpus. Output: the workload and an empty
    pilot schedule. Without a dev split, nothing is evaluated during training.
    """
    from domainfit.train.origins import LABELLED, SYNTHETIC

    train, counts = config.train, examples.counts()
    work, _ = count_workload(dataset, config, lengths, encode_window(config), train.max_seq_length,
                             synthetic=counts.get(SYNTHETIC, 0), examples=len(examples.examples))  # fmt: skip
    negatives = min(train.max_negatives, min((len(e.negatives) for e in examples.examples), default=0))
    work = replace(
        work,
        labelled=counts.get(LABELLED, 0),
        negatives=negatives,
        train_evaluations=work.train_evaluations if work.eval_queries else 0,
    )
    recipe = config.recipe
    return work, Schedule(0, recipe.pilot_steps, recipe.min_rung_steps, recipe.reduction_factor)


def plan_train(
    data: Path,
    workspace: Workspace,
    config: Config,
    budget: float,
    *,
    force: bool = False,
    probe: Probe | None = None,
) -> tuple[Plan, Config]:
    """Plan ``train`` within ``budget`` seconds; write ``plan/plan.json``; return the plan and the sized config.

    Inputs: the BEIR folder, the workspace, the root config, the budget, ``force``
    to measure the probe again and a probe to use instead of measuring one.
    Bad data or no training example raises before the probe; a budget that
    cannot hold ``[run] min_train_steps`` steps with two dev evaluations raises
    `UsageError` saying by how much, before anything is written.
    """
    from domainfit.data.beir import load_beir

    workspace.attach_data(data)
    workspace.check()
    dataset = load_beir(data, max_line_bytes=config.data.max_line_mib << 20, text=config.text)
    examples = train_examples(workspace, dataset, config)
    if not examples.examples:
        raise UsageError(f"{data}: no training examples in split {config.train.train_split!r}")
    texts = [d.full_text() for d in dataset.corpus.values()]
    if probe is None:
        picked = sample(examples.examples, config.train.batch_size * PROBE_BATCHES, config.train.seed)
        triples = [(e.anchor, e.positive, (e.negatives or [e.positive])[0]) for e in picked]
        probe = plan_probe(workspace, config, texts, [t[0] for t in triples], triples, config.train.max_seq_length,
                           force=force)  # fmt: skip
    lengths = corpus_lengths(config.train.base_model, texts, config.train.seed)
    asked, schedule = train_workload(dataset, config, examples, lengths)
    plan = fit_plan(config, asked, schedule, probe, budget=budget, spent=0.0, phase=PHASE, only=ONLY)
    write_plan(workspace, plan)
    return plan, apply_overrides(config, plan.overrides)


def record_train(workspace: Workspace, status: str, seconds: float) -> str | None:
    """Write ``plan/timings.json`` for a ``train --budget`` run; return its line (None without its plan).

    ``status``: "ran" or "up to date"; ``seconds``: the command's wall time
    from the plan to the saved model.
    """
    plan = read_plan(workspace)
    if plan is None or plan.phase != PHASE:
        return None
    record_timings(workspace, [{"stage": "train", "status": status, "seconds": round(seconds, 1)}], seconds)
    estimate = plan.estimate("train")
    budget = f" of a {format_minutes(plan.budget_seconds)} budget" if plan.budget_seconds else ""
    return f"time: {format_minutes(seconds)} against an estimate of {format_minutes(estimate or 0.0)}{budget}"
