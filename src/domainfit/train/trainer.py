"""The sentence-transformers trainer as domainfit builds it: base model, arguments, general mix, regularizer.

Shared by the ``train`` stage (`domainfit.stages.train`) and the recipe pilots
(`domainfit.recipe.pilot`), so a pilot trains exactly as the full run will.
Nothing here knows the workspace: inputs are configs, models, examples and folders.
"""

from __future__ import annotations

import math
import random
import shutil
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.core.models import load_bi_encoder
from domainfit.data.general_set import BUNDLED, general_path
from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.train import distributed
from domainfit.train.checkpoints import IncompleteCheckpointWarning, last_complete_checkpoint
from domainfit.train.config import TrainConfig
from domainfit.train.data import Example, examples_from_pairs
from domainfit.train.evaluator import primary_metric_key
from domainfit.train.router import separate_encoders

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from domainfit.train.regularize import Regularizer


def mix_general(
    examples: list[Example], cfg: TrainConfig, text: TextConfig = DEFAULT_TEXT
) -> tuple[list[Example], int]:
    """Add general-domain pairs (prepared under ``text``) so they make up ``general_share`` of the mix (seeded)."""
    if not cfg.general_pairs or cfg.general_share <= 0:
        return examples, 0
    general = examples_from_pairs(general_path(cfg.general_pairs), text)
    wanted = round(len(examples) * cfg.general_share / (1 - cfg.general_share))
    rng = random.Random(cfg.seed)
    picked = (
        [general[rng.randrange(len(general))] for _ in range(wanted)]
        if len(general) < wanted
        else rng.sample(general, wanted)
    )
    return [*examples, *picked], len(picked)


def step_seconds(model: SentenceTransformer, examples: list[Example], cfg: TrainConfig) -> float:
    """Estimate one optimiser step: forward + backward (about 3x a forward) over every text of a batch."""
    sample = [e.positive for e in examples[: min(16, len(examples))]]
    start = time.perf_counter()
    model.encode(sample, batch_size=len(sample), show_progress_bar=False)
    per_text = (time.perf_counter() - start) / max(1, len(sample))
    texts_per_example = 2 + min(cfg.max_negatives, max((len(e.negatives) for e in examples), default=0))
    return 3.0 * per_text * cfg.batch_size * texts_per_example


def truncated_positives(model: SentenceTransformer, examples: list[Example], cfg: TrainConfig) -> int | None:
    """Count training positives longer than ``max_seq_length`` and warn once with counts (never cut silently).

    Returns None for a model without a tokenizer (or with separate encoders, whose routes may differ).
    """
    if cfg.separate_encoders or getattr(model, "tokenizer", None) is None:
        return None
    from domainfit.data.truncation import check_truncation

    texts = [e.positive for e in examples]
    return check_truncation(model, texts, "training positives", cfg.base_model, prompt=cfg.document_prompt).n_over


def training_args(cfg: TrainConfig, output_dir: Path, has_evaluator: bool, columns: list[str]) -> Any:
    """SentenceTransformerTrainingArguments for a CPU run (evaluation, checkpoints, prompts)."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    save_steps = cfg.save_steps
    if has_evaluator and save_steps % cfg.eval_steps:
        save_steps = cfg.eval_steps * math.ceil(save_steps / cfg.eval_steps)  # best-model tracking needs this
    prompts = None
    if cfg.query_prompt or cfg.document_prompt:
        prompts = {
            c: (cfg.query_prompt if c in ("anchor", "query", "sentence1") else cfg.document_prompt)
            for c in columns
            if c != "label"
        }
    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        **_warmup(cfg.warmup_ratio),
        seed=cfg.seed,
        eval_strategy="steps" if has_evaluator else "no",
        eval_steps=cfg.eval_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=has_evaluator,
        metric_for_best_model=primary_metric_key() if has_evaluator else None,
        greater_is_better=True,
        logging_steps=max(1, min(cfg.eval_steps, 10)),
        report_to="none",
        disable_tqdm=True,  # progress is domainfit's own bar (`domainfit.core.progress.step_progress`)
        batch_sampler=BatchSamplers.NO_DUPLICATES if "anchor" in columns else BatchSamplers.BATCH_SAMPLER,
        prompts=prompts,
        dataloader_num_workers=0,
        **distributed.device_args(),
    )


def _warmup(ratio: float) -> dict[str, Any]:
    """Return the warmup argument: transformers 5 takes a ratio as float ``warmup_steps``, 4 as ``warmup_ratio``."""
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"warmup_steps": ratio} if major >= 5 else {"warmup_ratio": ratio}


def loss_history(log_history: list[dict[str, Any]], base_dev: float | None) -> dict[str, list[dict[str, float]]]:
    """Split the trainer's log into the training-loss curve and the dev-metric curve (step 0 = base model)."""
    loss = [{"step": e["step"], "loss": e["loss"]} for e in log_history if "loss" in e]
    key = primary_metric_key()
    dev = [{"step": 0, "ndcg@10": base_dev}] if base_dev is not None else []
    dev += [{"step": e["step"], "ndcg@10": e[key]} for e in log_history if key in e]
    return {"train_loss": loss, "dev_ndcg@10": dev}


def card_widget(model: SentenceTransformer, examples: list[Example]) -> None:
    """Give the model card its widget from one training query (else it is computed behind a second progress bar)."""
    if examples:
        model.model_card_data.widget = [{"text": examples[0].anchor}]


def load_base_model(cfg: TrainConfig) -> SentenceTransformer:
    """Load the base model with the configured prompts; with ``separate_encoders``, as query/document routes."""
    model = load_bi_encoder(cfg.base_model, max_seq_length=cfg.max_seq_length)
    model.prompts = {"query": cfg.query_prompt, "document": cfg.document_prompt}
    return separate_encoders(model) if cfg.separate_encoders else model


def domain_regularizer(
    model: SentenceTransformer, loss: Any, cfg: TrainConfig, steps: int, text: TextConfig = DEFAULT_TEXT
) -> Regularizer | None:
    """Return the domain loss wrapped with the MSE pull towards the base model (``regularize = "mse"``), or None.

    Call before training: the model's current embeddings are the teacher. The
    general pairs are the user's (``general_pairs``) or, without them, the bundled set,
    prepared under ``text``.
    """
    if cfg.regularize != "mse":
        return None
    from domainfit.train.regularize import build_regularizer

    source = cfg.general_pairs or BUNDLED
    pairs = [(e.anchor, e.positive) for e in examples_from_pairs(general_path(source), text)]
    return build_regularizer(
        model, loss, pairs, steps=steps, batch_size=cfg.batch_size, share=cfg.regularize_share,
        weight=cfg.regularize_weight, seed=cfg.seed, source=source,
    )  # fmt: skip


def forgetting_options(cfg: TrainConfig, n_general: int, regularizer: Regularizer | None) -> dict[str, Any]:
    """Record which options against forgetting the run used (for the result, eval and report)."""
    return {
        "general_pairs": cfg.general_pairs if n_general else None,
        "general_examples": n_general,
        "regularize": regularizer.describe() if regularizer else None,
        "merge": cfg.merge,
    }


def last_checkpoint(folder: Path) -> Path | None:
    """Return the newest complete ``checkpoint-<step>`` folder to resume from, or None.

    Newer checkpoints cut off while they were saved (see `domainfit.train.checkpoints`)
    are skipped with one warning naming them and why, and removed by the main
    process: the resumed run saves those steps afresh instead of over their remains.
    """
    last, skipped = last_complete_checkpoint(folder)
    if skipped and distributed.is_main_process():
        where = f"resuming from {last.name}" if last is not None else "no complete checkpoint: starting afresh"
        reasons = "; ".join(f"{path.name}: {why}" for path, why in skipped)
        warnings.warn(
            f"skipped incomplete checkpoint(s) ({reasons}); {where}", IncompleteCheckpointWarning, stacklevel=2
        )
        for path, _ in skipped:
            shutil.rmtree(path, ignore_errors=True)
    return last


def step_of(checkpoint: str | None) -> int | None:
    """Return the step number in a checkpoint path, or None."""
    if not checkpoint:
        return None
    tail = Path(checkpoint).name.rpartition("-")[2]
    return int(tail) if tail.isdigit() else None
