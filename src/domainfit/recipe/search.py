"""Recipe search: short pilots on dev, pruned by successive halving (Optuna), the best complete one wins.

Each recipe is one Optuna trial, asked in grid order (the reference recipe
first; the pruner never stops the first trial). A pilot trains for
``pilot_steps`` steps and calls ``reporter(step, dev_score)`` at each
evaluation; at the rungs (``min_rung_steps x reduction_factor^k`` steps) the
`SuccessiveHalvingPruner` keeps only trials in the top ``1 / reduction_factor``
of those that reached the rung (with fewer than ``reduction_factor`` trials
there: only the best so far), and the reporter raises `Pruned` for the others.

Example::

    result = run_search(recipe_space(cfg, has_synthetic=False, has_teacher=False), pilot, cfg)
    result.winner.recipe.overrides()  # train the winner to the end with these
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.trial import TrialState

from domainfit.recipe.config import RecipeConfig
from domainfit.recipe.space import Recipe

#: ``reporter(step, dev_score)``: called by a pilot at each evaluation; raises `Pruned` when the pruner says so.
Reporter = Callable[[int, float], None]
#: ``pilot(recipe, reporter) -> final dev score``: a short training run of one recipe.
PilotFn = Callable[[Recipe, Reporter], float]

State = Literal["complete", "pruned", "failed", "skipped"]


class Pruned(optuna.TrialPruned):
    """The pruner stopped this pilot at ``step`` (its dev score there: ``score``)."""

    def __init__(self, step: int, score: float) -> None:
        super().__init__(f"pruned at step {step} (dev {score:.4f})")
        self.step, self.score = step, score


@dataclass
class TrialRecord:
    """One recipe's pilot: its state, dev curve ``[(step, score)]``, wall time and best score."""

    number: int
    recipe: Recipe
    state: State
    curve: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0
    score: float | None = None  # the pilot's returned score (complete trials)
    best_score: float | None = None  # best dev score after step 0
    pruned_at: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the trial as a JSON-ready dict."""
        return {
            "number": self.number,
            "recipe": self.recipe.to_json(),
            "state": self.state,
            "curve": [{"step": s, "ndcg@10": v} for s, v in self.curve],
            "seconds": round(self.seconds, 2),
            "score": self.score,
            "best_score": self.best_score,
            "pruned_at": self.pruned_at,
            "error": self.error,
        }


@dataclass
class SearchResult:
    """Every trial in grid order, the winner (best complete trial, ties to the earlier) and the schedule."""

    trials: list[TrialRecord]
    winner: TrialRecord | None
    rungs: list[int]
    config: dict[str, Any]

    def by_state(self, state: State) -> list[TrialRecord]:
        """Return the trials in ``state``."""
        return [t for t in self.trials if t.state == state]

    def to_json(self) -> dict[str, Any]:
        """Return the search as a JSON-ready dict (trials, winner's name, rungs, config)."""
        return {
            "winner": self.winner.recipe.name if self.winner else None,
            "winner_score": self.winner.score if self.winner else None,
            "rungs": self.rungs,
            "trials": [t.to_json() for t in self.trials],
            "config": self.config,
        }


def rung_steps(cfg: RecipeConfig) -> list[int]:
    """Return the steps where the pruner decides: ``min_rung_steps * reduction_factor**k`` below ``pilot_steps``."""
    out, step = [], cfg.min_rung_steps
    while step < cfg.pilot_steps:
        out.append(step)
        step *= cfg.reduction_factor
    return out


def evaluation_steps(cfg: RecipeConfig) -> list[int]:
    """Return the steps a pilot evaluates at: every rung and the pilot's last step."""
    return [*rung_steps(cfg), cfg.pilot_steps]


def _study(cfg: RecipeConfig, n: int) -> optuna.Study:
    """Create the in-memory study: grid over recipe indices, successive halving, seeded, quiet."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.GridSampler({"recipe": list(range(n))}, seed=cfg.seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=cfg.min_rung_steps, reduction_factor=cfg.reduction_factor, min_early_stopping_rate=0
        ),
    )


def _run_trial(study: optuna.Study, index: int, n: int, recipe: Recipe, pilot: PilotFn) -> TrialRecord:
    """Run recipe ``index`` of ``n`` as an Optuna trial (ask, report, tell) and record what happened."""
    trial = study.ask()
    if trial.suggest_categorical("recipe", list(range(n))) != index:
        raise RuntimeError("the study asked for another recipe than the one enqueued")
    record = TrialRecord(number=trial.number, recipe=recipe, state="complete")

    def reporter(step: int, score: float) -> None:
        record.curve.append((int(step), float(score)))
        trial.report(float(score), int(step))
        if trial.should_prune():
            record.pruned_at = int(step)
            raise Pruned(int(step), float(score))

    start = time.perf_counter()
    try:
        score = float(pilot(recipe, reporter))
    except optuna.TrialPruned:
        record.state = "pruned"
    except Exception as exc:  # a failing recipe is recorded, the search goes on
        record.state, record.error = "failed", f"{type(exc).__name__}: {exc}"
    else:
        record.state, record.score = ("pruned", None) if record.pruned_at is not None else ("complete", score)
    record.seconds = time.perf_counter() - start
    trained = [v for s, v in record.curve if s > 0]
    record.best_score = max(trained) if trained else None
    if record.state == "complete":
        study.tell(trial, record.score)
    else:
        study.tell(trial, state=TrialState.PRUNED if record.state == "pruned" else TrialState.FAIL)
    return record


def run_search(recipes: Sequence[Recipe], pilot: PilotFn, cfg: RecipeConfig) -> SearchResult:
    """Run the first ``max_trials`` recipes as pilots, in order, pruning by successive halving on dev.

    Inputs: the recipes (`recipe_space` order: the first is the reference), the
    pilot (`PilotFn`; it must call the reporter at the `evaluation_steps` and
    let `Pruned` propagate) and the config (schedule, ``max_trials``, seed).
    Output: a `SearchResult` with every recipe (those past ``max_trials`` as
    ``skipped``) and the winner: the complete trial with the highest score,
    the earlier one on ties; None when no pilot completed.
    """
    if not recipes:
        raise ValueError("no recipe to search")
    study = _study(cfg, len(recipes))
    run = list(recipes)[: cfg.max_trials]
    for index in range(len(run)):
        study.enqueue_trial({"recipe": index})
    trials = [_run_trial(study, i, len(recipes), recipe, pilot) for i, recipe in enumerate(run)]
    trials += [TrialRecord(number=-1, recipe=r, state="skipped") for r in list(recipes)[cfg.max_trials :]]
    complete = [t for t in trials if t.state == "complete" and t.score is not None]
    winner = max(complete, key=lambda t: (t.score, -t.number)) if complete else None
    return SearchResult(trials=trials, winner=winner, rungs=rung_steps(cfg), config=cfg.model_dump())
