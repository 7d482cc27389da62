"""Fit a run into a time budget: choose how many synthetic pairs, pilots, pilot steps and training steps.

The stages whose work is fixed by the data (encoding the corpus for bench and
eval, compression) are not cut; what a budget can buy less of is, in order:

1. synthetic pairs: generated from fewer documents, down to what the largest
   synthetic share of the recipe search can use;
2. the recipe search: fewer pilots (down to two), then shorter pilots (down to
   two rungs of successive halving);
3. evaluations during training: at most three (base, middle, end), then two
   (base and end), then fewer dev queries in each (sampled, down to
   `EVAL_QUERY_FLOOR`; its pool shrinks with them): on a large corpus one
   evaluation can cost as much as a hundred steps;
4. the search itself (no pilots, the reference recipe), when what is left of
   it would leave the full run fewer steps than the settings ask (about one
   epoch): an under-trained winner loses more than the search finds;
5. training steps of the full run, down to ``[run] min_train_steps``.

When even the smallest plan does not fit, `Fitted.fits` is False and the
caller refuses the run before any expensive work.

``run`` fits every stage of the loop; ``train --budget`` fits the same way
over the one stage it runs (``only=("train",)``, no synthetic pairs to cut,
no search), so the same workload gets the same steps, evaluations and dev
queries through either command.

Example::

    fitted = fit_to_budget(workload, probe, schedule, eval_steps=50, budget_seconds=1800, spent=40.0)
    fitted.workload.train_steps, fitted.changes
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from domainfit.budget.estimate import SYNTHETIC_PER_DOCUMENT, StageEstimate, Workload, estimate_stages
from domainfit.budget.probe import Probe


class _Named(Protocol):
    """A stage's estimate: anything with the stage's name."""

    stage: str


T = TypeVar("T", bound=_Named)

#: Fewest pilots a budget may leave the search (the reference and one other recipe).
MIN_PILOTS = 2
#: Fewest dev queries a budget may leave the full run's evaluations (a paired difference of 0.02 NDCG@10
#: is still about two standard errors on 200 queries).
EVAL_QUERY_FLOOR = 200


@dataclass
class Schedule:
    """The pilot schedule of the recipe search: trials, steps each, first rung, reduction factor, folds.

    With selection on held-out folds of the train queries, a pilot trains once per fold.
    """

    trials: int
    pilot_steps: int
    min_rung: int
    factor: int
    folds: int = 1

    def rungs(self) -> list[int]:
        """Return the steps where successive halving decides (``min_rung * factor**k`` below ``pilot_steps``)."""
        out, step = [], self.min_rung
        while step < self.pilot_steps:
            out.append(step)
            step *= self.factor
        return out

    def expected(self) -> tuple[int, int]:
        """Return (training steps, dev evaluations) of all pilots under successive halving.

        Optuna's pruner promotes the k-th pilot at a rung when it is in the top
        ``k // factor`` of the pilots seen there (the best one while fewer than
        ``factor`` have been): the first pilot runs to the end, the second passes
        a rung with probability 1/2, later ones with about ``1 / factor``. Each
        pilot evaluates at every rung it reaches and at its end; the base model
        is evaluated once for the whole search.
        """
        if self.trials <= 0:
            return 0, 0
        marks = [*self.rungs(), self.pilot_steps]
        steps, evals = 0.0, 1.0
        for k in range(1, self.trials + 1):
            passing = 1.0 if k == 1 else max(1.0 / self.factor, max(1, k // self.factor) / k)
            alive, last = 1.0, 0
            for mark in marks:
                steps += alive * (mark - last)
                evals += alive
                alive, last = alive * passing, mark
        return math.ceil(steps * self.folds), math.ceil(evals * self.folds)


@dataclass
class Fitted:
    """The workload that fits (or the smallest one), its estimates and what was changed, each with its reason."""

    workload: Workload
    schedule: Schedule
    eval_steps: int
    stages: list[StageEstimate]
    seconds: float
    fits: bool
    changes: list[str] = field(default_factory=list)


def with_schedule(work: Workload, schedule: Schedule) -> Workload:
    """Return ``work`` with the pilots' steps and evaluations of ``schedule``."""
    steps, evals = schedule.expected()
    return replace(work, pilots=schedule.trials, pilot_steps=steps, pilot_evaluations=evals)


def evaluations(steps: int, eval_steps: int) -> int:
    """Return the evaluations of a full run: the base model, then every ``eval_steps`` steps."""
    return 1 + steps // max(1, eval_steps)


def eval_every(steps: int, count: int) -> int:
    """Return the ``eval_steps`` that evaluate a run of ``steps`` steps ``count`` times (the base model included)."""
    return max(1, math.ceil(steps / max(1, count - 1)))


def still_to_run(stages: list[T], done: tuple[str, ...], only: tuple[str, ...] = ()) -> list[T]:
    """Return the estimates of the stages still to run: everything after the last of ``done`` in loop order.

    ``only``: the stages the command runs (empty: all of them), e.g. ``("train",)`` for ``train --budget``.
    """
    names = [s.stage for s in stages]
    last = max((i for i, n in enumerate(names) if n in done), default=-1)
    return [s for s in stages[last + 1 :] if not only or s.stage in only]


def _total(
    work: Workload, probe: Probe, spent: float, done: tuple[str, ...] = (), only: tuple[str, ...] = ()
) -> tuple[list[StageEstimate], float]:
    """Return the stage estimates and ``spent`` plus the sum of those still to run (see `still_to_run`)."""
    stages = estimate_stages(work, probe)
    return stages, spent + sum(s.seconds for s in still_to_run(stages, done, only))


def fit_to_budget(
    work: Workload,
    probe: Probe,
    schedule: Schedule,
    *,
    eval_steps: int,
    budget_seconds: float | None,
    spent: float = 0.0,
    min_train_steps: int = 20,
    max_share: float = 0.5,
    cut_synthetic: bool = True,
    done: tuple[str, ...] = (),
    only: tuple[str, ...] = (),
) -> Fitted:
    """Return the largest plan (up to ``work``) whose estimate, plus ``spent``, fits ``budget_seconds``.

    Inputs: the workload the settings ask for, the probe, the recipe search's
    schedule, the full run's ``eval_steps``, the budget (None: no budget, the
    workload as asked), seconds already spent, the fewest training steps and
    the largest synthetic share the search tries, and the stages already
    ``done`` (their time is in ``spent``: only the stages after them count)
    and ``only`` the stages the command runs (empty: every stage).
    Output: a `Fitted` (its ``stages`` are every stage's estimate).
    """
    work = with_schedule(work, schedule)
    stages, total = _total(work, probe, spent, done, only)
    fitted = Fitted(work, schedule, eval_steps, stages, round(total, 1), True)
    if budget_seconds is None or total <= budget_seconds:
        return fitted

    def over() -> bool:
        fitted.stages, total = _total(fitted.workload, probe, spent, done, only)
        fitted.seconds = round(total, 1)
        return total > budget_seconds

    # 1. synthetic pairs: only as many as the largest share can use
    need = math.ceil(work.labelled * max_share / (1 - max_share)) if max_share < 1 else work.synthetic
    if cut_synthetic and work.synthetic > need:
        docs = min(work.source_documents, math.ceil(need / SYNTHETIC_PER_DOCUMENT))
        fitted.workload = replace(fitted.workload, synthetic=need, source_documents=docs)
        fitted.changes.append(
            f"synthetic pairs cut to {need} (generated from {docs} documents): what a {max_share:.0%} share of "
            f"{work.labelled} labelled pairs uses"
        )
        if not over():
            return fitted
    # 2. fewer, then shorter pilots
    while fitted.schedule.trials > MIN_PILOTS and over():
        fitted.schedule = replace(fitted.schedule, trials=fitted.schedule.trials - 1)
        fitted.workload = with_schedule(fitted.workload, fitted.schedule)
    if fitted.schedule.trials < schedule.trials:
        fitted.changes.append(f"recipe search cut to {fitted.schedule.trials} of {schedule.trials} pilots")
    shortest = 2 * schedule.min_rung
    if fitted.schedule.trials > 0 and fitted.schedule.pilot_steps > shortest and over():
        fitted.schedule = replace(fitted.schedule, pilot_steps=shortest)
        fitted.workload = with_schedule(fitted.workload, fitted.schedule)
        fitted.changes.append(f"pilots cut to {shortest} steps")
    # 3. at most three evaluations in the full run, then two, then fewer dev queries in them
    steps = fitted.workload.train_steps
    _fewer_evaluations(fitted, over, eval_steps)
    _fewer_eval_queries(fitted, over)
    # 4. no search, when its pilots would leave the full run fewer steps than asked
    if over() and fitted.schedule.trials > 0 and _steps_that_fit(fitted, budget_seconds, steps) < steps:
        fitted.schedule = replace(fitted.schedule, trials=0)
        fitted.workload = with_schedule(fitted.workload, fitted.schedule)
        fitted.changes.append(
            "no recipe search: its pilots would leave the full run fewer steps than asked; the reference recipe "
            "is trained"
        )
    # 5. fewer training steps
    if over():
        cut = max(min_train_steps, _steps_that_fit(fitted, budget_seconds, steps))
        if cut < steps:
            _cut_steps(fitted, cut)
            while over() and fitted.workload.train_steps > min_train_steps:  # the estimates' rounding
                _cut_steps(fitted, max(min_train_steps, fitted.workload.train_steps - max(1, cut // 100)))
            fitted.changes.append(f"full run cut to {fitted.workload.train_steps} of {steps} training steps")
    fitted.fits = not over()
    return fitted


def _cut_steps(fitted: Fitted, steps: int) -> None:
    """Give the full run ``steps`` steps, evaluated as many times as before (none without a dev split)."""
    count = fitted.workload.train_evaluations
    fitted.eval_steps = eval_every(steps, count)
    fitted.workload = replace(
        fitted.workload, train_steps=steps, train_evaluations=evaluations(steps, fitted.eval_steps) if count else 0
    )


def _steps_that_fit(fitted: Fitted, budget_seconds: float, steps: int) -> int:
    """Training steps of the full run (at most ``steps``) that fit beside everything else in ``fitted``'s estimate."""
    per_step = _train_step_seconds(fitted) / max(1, fitted.workload.train_steps)
    if per_step <= 0:
        return steps
    room = budget_seconds - (fitted.seconds - _train_step_seconds(fitted))
    return max(0, min(steps, int(room / per_step)))


def _fewer_evaluations(fitted: Fitted, over: Callable[[], bool], eval_steps: int) -> None:
    """Evaluate the full run at most three times (base, middle, end), then only at the base and the end."""
    steps = fitted.workload.train_steps
    if fitted.workload.train_evaluations == 0:
        return  # nothing to evaluate on (no dev split)
    if over() and evaluations(steps, eval_steps) > 3:
        fitted.eval_steps = eval_every(steps, 3)
        fitted.workload = replace(fitted.workload, train_evaluations=evaluations(steps, fitted.eval_steps))
        count = fitted.workload.train_evaluations
        fitted.changes.append(f"dev evaluations of the full run every {fitted.eval_steps} steps ({count} in all)")
    if over() and fitted.workload.train_evaluations > 2:
        fitted.eval_steps = max(1, steps)
        fitted.workload = replace(fitted.workload, train_evaluations=2)
        fitted.changes.append("dev evaluations of the full run: the base model and the end (2 in all)")


def _fewer_eval_queries(fitted: Fitted, over: Callable[[], bool]) -> None:
    """Halve the dev queries of the full run's evaluations (and their pool) while ``over()``, down to the floor."""
    work = fitted.workload
    asked, per_query = work.eval_queries, work.eval_pool_per_query
    if per_query is None or work.train_evaluations == 0:
        return  # the full corpus: fewer queries would not shrink what an evaluation encodes
    while fitted.workload.eval_queries > EVAL_QUERY_FLOOR and over():
        queries = max(EVAL_QUERY_FLOOR, fitted.workload.eval_queries // 2)
        pool = min(work.documents, math.ceil(queries * per_query))
        fitted.workload = replace(fitted.workload, eval_queries=queries, eval_pool_documents=pool)
    if fitted.workload.eval_queries < asked:
        fitted.changes.append(
            f"dev evaluations of the full run score {fitted.workload.eval_queries} of {asked} dev queries "
            f"(sampled; their pool is {fitted.workload.eval_pool_documents} documents)"
        )


def _train_step_seconds(fitted: Fitted) -> float:
    """Seconds of the full run's training steps in ``fitted``'s estimate."""
    train = next((s for s in fitted.stages if s.stage == "train"), None)
    return train.parts.get("steps", 0.0) if train else 0.0
