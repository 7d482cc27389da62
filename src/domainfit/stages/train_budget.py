"""``domainfit train --budget``: the training run's plan from a measured probe, its steps cut to the budget."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from domainfit.budget.duration import format_minutes
from domainfit.budget.probe import corpus_lengths, measure_probe, sample
from domainfit.core.errors import UsageError
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from domainfit.core.workspace import Workspace
    from domainfit.train.config import TrainConfig


def fit_train(
    data: Path,
    workspace: Workspace,
    cfg: TrainConfig,
    budget: float,
    *,
    max_line_bytes: int,
    min_steps: int = 20,
    text: TextConfig = DEFAULT_TEXT,
) -> tuple[TrainConfig, str]:
    """Return ``cfg`` with ``max_steps`` (and evaluation steps) that fit ``budget`` seconds, and the plan line.

    The steps and dev evaluations are timed on this machine with the run's own
    examples (mine's dataset when it exists, else the train qrels), batch and
    window. Raises `UsageError` when not even ``min_steps`` steps fit.
    """
    from domainfit.data.beir import load_beir
    from domainfit.stages.recipe import _examples

    dataset = load_beir(data, max_line_bytes=max_line_bytes, text=text)
    examples = _examples(workspace, dataset, cfg, text).examples
    if not examples:
        raise UsageError(f"{data}: no training examples in split {cfg.train_split!r}")
    triples = [(e.anchor, e.positive, (e.negatives or [e.positive])[0]) for e in sample(examples, 256, cfg.seed)]
    texts = [d.full_text() for d in dataset.corpus.values()]
    probe = measure_probe(cfg.base_model, texts, [t[0] for t in triples], triples, batch_size=cfg.batch_size,
                          window=cfg.max_seq_length, train_window=cfg.max_seq_length,
                          train_batch_size=cfg.batch_size, seed=cfg.seed)  # fmt: skip
    steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(len(examples) * cfg.epochs / cfg.batch_size)
    dev = len(dataset.qrels.get(cfg.eval_split, {}))
    pool = len(texts) if cfg.eval_corpus == "full" else min(len(texts), dev * cfg.eval_pool_depth)
    per_eval = (
        probe.document_seconds(corpus_lengths(cfg.base_model, texts, cfg.seed), pool) + dev * probe.seconds_per_query
    )
    per_step = probe.seconds_per_step * (2 + min(cfg.max_negatives, 1)) / 3
    eval_steps = cfg.eval_steps

    def total(n: int, every: int) -> float:
        return probe.model_load_seconds + n * per_step + (1 + n // max(1, every)) * per_eval if dev else n * per_step

    fitted = steps
    if total(steps, eval_steps) > budget:
        eval_steps = max(1, math.ceil(steps / 2))
        room = budget - probe.model_load_seconds - (3 * per_eval if dev else 0.0)
        fitted = min(steps, int(room / per_step)) if per_step > 0 else steps
    if fitted < min_steps:
        raise UsageError(
            f"--budget {format_minutes(budget)} holds fewer than {min_steps} training steps "
            f"({per_step:.1f} s per step, {per_eval:.0f} s per dev evaluation measured here); raise it"
        )
    if fitted < steps:
        eval_steps = max(1, math.ceil(fitted / 2))
    out = replace_config(cfg, fitted, eval_steps) if fitted < steps or eval_steps != cfg.eval_steps else cfg
    line = (
        f"plan: {fitted} of {steps} steps x {per_step:.1f} s + {1 + fitted // max(1, eval_steps)} dev evaluations "
        f"x {per_eval:.0f} s = {format_minutes(total(fitted, eval_steps))} of a {format_minutes(budget)} budget"
    )
    return out, line


def replace_config(cfg: TrainConfig, steps: int, eval_steps: int) -> TrainConfig:
    """Return ``cfg`` with ``steps`` training steps, evaluating and saving every ``eval_steps``."""
    return cfg.model_copy(update={"max_steps": steps, "eval_steps": eval_steps, "save_steps": eval_steps})
