"""A real pilot: a short sentence-transformers training run of one recipe, scored on dev as it goes.

The pilot builds the recipe's training config (the ``[train]`` settings with
the recipe's learning rate, loss and negatives, ``max_steps = pilot steps``),
loads the base model, shapes the recipe's examples for its loss and trains
with the same pieces as the ``train`` stage (`domainfit.train.trainer`), but
saves nothing: no checkpoints, no model. At each of its evaluation steps it
scores the dev evaluator and calls the search's reporter; when that raises
`Pruned`, training stops at once and the exception is raised again.

Example::

    evaluator = pool_evaluator(dataset.corpus, dev_queries, dev_qrels, pool)
    pilot = TrainingPilot(train_cfg, lambda recipe: examples, evaluator, evaluation_steps(cfg))
    result = run_search(recipes, pilot, cfg)
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.recipe.search import Pruned, Reporter
from domainfit.recipe.space import Recipe
from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.train.config import TrainConfig
from domainfit.train.data import Example, Teacher, to_dataset

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: ``examples(recipe) -> training examples`` (the recipe's labelled/synthetic mix, with hard negatives).
ExamplesFn = Callable[[Recipe], Sequence[Example]]


def pilot_train_config(base: TrainConfig, recipe: Recipe, steps: int) -> TrainConfig:
    """Return ``base`` with the recipe's ``[train]`` overrides, ``steps`` steps, no early stopping and no merge."""
    values = {**base.model_dump(), **recipe.overrides()["train"]}
    values.update(max_steps=steps, early_stopping_patience=None, merge=False, curriculum=False, dataset=None)
    return TrainConfig.model_validate(values)


def primary_score(evaluator: Any, metrics: dict[str, float], prefix: str = "") -> float:
    """Return the evaluator's primary metric (dev NDCG@10) from a metrics dict (trainer logs use ``eval_``)."""
    key = f"{prefix}{evaluator.primary_metric}"
    if key in metrics:
        return float(metrics[key])
    found = [k for k in metrics if k.endswith("ndcg@10")]
    if not found:
        raise KeyError(f"no NDCG@10 among the evaluation metrics: {sorted(metrics)}")
    return float(metrics[found[0]])


def _report_callback(reporter: Reporter, evaluator: Any, steps: Sequence[int]) -> Any:
    """Return a TrainerCallback that evaluates at ``steps``, reports each score and stops training when pruned."""
    from transformers import TrainerCallback

    wanted = set(steps)

    class ReportCallback(TrainerCallback):
        """Evaluate at the pilot's steps; hand each dev score to the reporter; stop on `Pruned`."""

        def __init__(self) -> None:
            self.pruned: Pruned | None = None
            self.scores: list[float] = []
            self.step_seconds: list[float] = []  # optimiser steps, evaluations excluded
            self.eval_seconds: list[float] = []
            self._clock: float | None = None

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            """Start timing the step."""
            self._clock = time.perf_counter()
            return control

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            """Time the step; ask for an evaluation at the pilot's evaluation steps."""
            now = time.perf_counter()
            if self._clock is not None:
                self.step_seconds.append(now - self._clock)
            self._clock = now  # an evaluation after this step is timed from here
            if state.global_step in wanted:
                control.should_evaluate = True
            return control

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> Any:
            """Report the dev score; a `Pruned` from the reporter stops training (raised again after it)."""
            if self._clock is not None:
                self.eval_seconds.append(time.perf_counter() - self._clock)
            score = primary_score(evaluator, metrics or {}, prefix="eval_")
            self.scores.append(score)
            try:
                reporter(int(state.global_step), score)
            except Pruned as exc:
                self.pruned = exc
                control.should_training_stop = True
            return control

    return ReportCallback()


class TrainingPilot:
    """``pilot(recipe, reporter) -> best dev score``: a short real training run per recipe.

    Inputs: the ``[train]`` config the recipes modify; ``examples(recipe)``,
    the recipe's training examples; the dev evaluator (e.g. `pool_evaluator`);
    the evaluation steps (`evaluation_steps`, the last one is the pilot's
    length); the margin-mse teacher (scores with the base model; None: no
    margin-mse recipes); an output folder (None: a temporary one); the ``[text]``
    settings the general pairs are prepared under.
    Output of a call: the best dev NDCG@10 after step 0; the base score is
    reported at step 0 first (measured once, `base_score`). Nothing is saved.
    """

    def __init__(
        self,
        train_cfg: TrainConfig,
        examples: ExamplesFn,
        evaluator: Any,
        steps: Sequence[int],
        *,
        teacher: Teacher | None = None,
        output_dir: Path | None = None,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        self.text = text
        if not steps:
            raise ValueError("a pilot needs at least one evaluation step")
        self.train_cfg, self.examples, self.evaluator = train_cfg, examples, evaluator
        self.steps = sorted(set(steps))
        self.teacher, self.output_dir = teacher, output_dir
        self._base: float | None = None
        #: per pilot run: seconds of each optimiser step and of each evaluation (the plan's measured probes)
        self.timings: list[dict[str, list[float]]] = []

    def base_score(self) -> float:
        """Return the base model's dev score (measured on the first call, then kept)."""
        if self._base is None:
            from domainfit.train.trainer import load_base_model

            model = load_base_model(self.train_cfg)
            self._base = primary_score(self.evaluator, self.evaluator(model))
        return self._base

    def __call__(self, recipe: Recipe, reporter: Reporter) -> float:
        """Train ``recipe`` for the pilot's steps, reporting dev scores; raise `Pruned` when the search prunes it."""
        reporter(0, self.base_score())
        cfg = pilot_train_config(self.train_cfg, recipe, self.steps[-1])
        if self.output_dir is not None:
            return self._train(recipe, cfg, reporter, self.output_dir / recipe.name)
        with tempfile.TemporaryDirectory(prefix="domainfit-pilot-") as scratch:
            return self._train(recipe, cfg, reporter, Path(scratch))

    def _train(self, recipe: Recipe, cfg: TrainConfig, reporter: Reporter, out: Path) -> float:
        """Build the model, loss, data and trainer for ``cfg``, train, and return the best reported score."""
        from sentence_transformers import SentenceTransformerTrainer
        from transformers.trainer_callback import PrinterCallback
        from transformers.trainer_utils import SaveStrategy

        from domainfit.train.losses import REGISTRY, build_loss
        from domainfit.train.router import router_mapping
        from domainfit.train.trainer import domain_regularizer, load_base_model, mix_general, training_args

        if REGISTRY[cfg.loss].layout == "margin" and self.teacher is None:
            raise ValueError(f"recipe {recipe.name} uses margin-mse but the pilot has no teacher")
        model: SentenceTransformer = load_base_model(cfg)
        model.model_card_data.widget = [{"text": recipe.name}]  # nothing is saved: skip the card's own progress bar
        loss, spec = build_loss(model, cfg)
        mixed, _ = mix_general(list(self.examples(recipe)), cfg, self.text)
        data = to_dataset(mixed, spec.layout, max_negatives=cfg.max_negatives, teacher=self.teacher, seed=cfg.seed)
        args = training_args(cfg, out, False, list(data.column_names))
        args.save_strategy = SaveStrategy.NO  # pilots keep no checkpoint
        args.disable_tqdm = True  # one bar per pilot would drown the search's own progress lines
        if cfg.separate_encoders:
            args.router_mapping = router_mapping(data.column_names)
        regularizer = domain_regularizer(model, loss, cfg, self.steps[-1], self.text)
        callback = _report_callback(reporter, self.evaluator, self.steps)
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=data,
            loss=regularizer.loss if regularizer else loss,
            evaluator=self.evaluator,
            callbacks=[callback],
        )
        trainer.remove_callback(PrinterCallback)  # log dicts on stdout would break --json
        try:
            trainer.train()
        finally:
            self.timings.append({"steps": callback.step_seconds, "evaluations": callback.eval_seconds})
        if callback.pruned is not None:
            raise callback.pruned
        if not callback.scores:
            raise RuntimeError(f"pilot {recipe.name} never evaluated (steps {self.steps})")
        return max(callback.scores)
