"""Selection on held-out folds: one pilot per fold, reported to the search as one trial.

With no usable dev split (`domainfit.recipe.folds.needs_folds`), each recipe
is piloted on every fold of the train queries in turn (train on the other
folds, score on the held-out one). The search sees one curve per recipe: fold
``f``'s step ``s`` is reported at step ``f * fold_steps + s`` with the mean,
over the folds run so far, of their scores at step ``s``, so the pruner can
stop a recipe during its first fold. The trial's score is the mean of the
folds' scores.

Example::

    pilots = [TrainingPilot(train_cfg, examples_of(train_part), pool_evaluator(corpus, texts, heldout), steps)
              for train_part, heldout in selection_folds(train_qrels, queries, 3, seed=13)]
    result = run_search(recipes, CrossFoldPilot(pilots, fold_steps=cfg.pilot_steps), cfg)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from domainfit.recipe.search import PilotFn, Reporter
from domainfit.recipe.space import Recipe


class CrossFoldPilot:
    """``pilot(recipe, reporter) -> mean score over folds``, running each fold's pilot in turn.

    Inputs: one pilot per fold (each reports at the same steps, the last being
    ``fold_steps``). Output of a call: the mean of the fold pilots' scores.
    A `Pruned` raised by the reporter stops the recipe (every later fold is skipped).
    """

    def __init__(self, pilots: Sequence[PilotFn], fold_steps: int) -> None:
        if not pilots:
            raise ValueError("CrossFoldPilot needs at least one fold pilot")
        self.pilots, self.fold_steps = list(pilots), fold_steps

    def __call__(self, recipe: Recipe, reporter: Reporter) -> float:
        """Pilot ``recipe`` on every fold; report the running mean curve; return the mean fold score."""
        curves: list[dict[int, float]] = []
        scores: list[float] = []
        for fold, pilot in enumerate(self.pilots):
            curve: dict[int, float] = {}
            curves.append(curve)

            def fold_reporter(step: int, score: float, fold: int = fold, curve: dict[int, float] = curve) -> None:
                curve[step] = score
                if fold > 0 and step == 0:
                    return  # the same base model: its step 0 was reported with the first fold
                seen = [c[step] for c in curves if step in c]
                reporter(fold * self.fold_steps + step, math.fsum(seen) / len(seen))

            scores.append(float(pilot(recipe, fold_reporter)))
        return math.fsum(scores) / len(scores)
