"""The ``train`` stage: build and run the sentence-transformers trainer from the config.

Input: a BEIR folder (train split and/or the ``mine`` dataset; dev split for
evaluation), a workspace and a `TrainConfig`. Output, in ``<workspace>/train/``:
``model/`` (a sentence-transformers folder: safetensors, prompts, model card),
``history.json`` (loss and dev NDCG@10 by step), ``result.json``, ``config.json``
and ``manifest.json``. Checkpoints live in ``<workspace>/train-checkpoints/``
so an interrupted run resumes with ``resume=True``.

Without a ``mine`` dataset the examples are the train qrels' (query, document)
pairs; with ``[chunking]`` on, a document longer than the base model's window is
then replaced by its chunk closest to the query (`domainfit.synth.chunked`), as
``mine`` does, instead of being truncated silently.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit import __version__
from domainfit.bench import data_fingerprint
from domainfit.data.beir import BeirDataset, load_beir
from domainfit.data.general_set import BUNDLED, general_path
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.models import load_bi_encoder, load_cross_encoder
from domainfit.progress import is_quiet, progress_bar, step_progress
from domainfit.text.config import active_normalization, write_model_text_settings
from domainfit.train import distributed
from domainfit.train.checkpoints import IncompleteCheckpointWarning, completion_callback, last_complete_checkpoint
from domainfit.train.config import TrainConfig
from domainfit.train.data import (
    Example,
    Teacher,
    curriculum_examples,
    examples_from_pairs,
    examples_from_qrels,
    sequential_batches,
    to_dataset,
)
from domainfit.train.evaluator import PoolSource, dev_evaluator, primary_metric_key
from domainfit.train.losses import build_loss, loss_config
from domainfit.train.merge import choose_merge
from domainfit.train.origins import mined_examples
from domainfit.train.router import router_mapping, separate_encoders
from domainfit.train.teacher import CrossEncoderTeacher, HybridTeacher
from domainfit.workspace import Workspace, atomic_write_json, staged_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from domainfit.data.chunking import ChunkingConfig
    from domainfit.train.regularize import Regularizer

STAGE = "train"
CHECKPOINTS = "train-checkpoints"


@dataclass
class TrainResult:
    """What one training run did and measured."""

    model_path: str
    training_source: str
    train_examples: int
    layout: str
    steps: int
    estimated_seconds: float
    seconds: float
    base_dev_ndcg10: float | None
    best_dev_ndcg10: float | None
    best_step: int | None
    resumed_from: str | None
    general_examples: int = 0
    merge_weight: float | None = None
    merge_dev_scores: dict[str, float] | None = None
    up_to_date: bool = False
    world_size: int = 1
    against_forgetting: dict[str, Any] | None = None
    separate_encoders: bool = False
    text_normalization: str | None = None  # see domainfit.text.normalize.normalization_id
    truncated_positives: int | None = None  # training positives longer than max_seq_length (None: not checked)


def _chunked_qrels_examples(
    dataset: BeirDataset, workspace: Workspace, cfg: TrainConfig, chunking: ChunkingConfig
) -> tuple[list[Example], str]:
    """Train-qrels examples whose long documents are replaced by their best chunk under the base model."""
    from domainfit.retrieval.dense import DenseRetriever
    from domainfit.synth.chunked import chunk_pair_positives
    from domainfit.synth.datasets import labelled_pairs

    examples_from_qrels(dataset, cfg.train_split)  # the same errors as without chunking
    dense = DenseRetriever(
        cfg.base_model, cache_dir=workspace.cache_dir / "embeddings", max_seq_length=cfg.max_seq_length
    )
    pairs, _, chosen, _ = chunk_pair_positives(
        dense, chunking, dataset.corpus, labelled_pairs(dataset, cfg.train_split)
    )
    label = f"qrels/{cfg.train_split}.tsv"
    if chosen:
        label += f" ({len(chosen)} long documents as their best chunk)"
    return [Example(p.query, p.positive(dataset.corpus)) for p in pairs], label


def _examples(
    dataset: BeirDataset, workspace: Workspace, cfg: TrainConfig, chunking: ChunkingConfig | None = None
) -> tuple[list[Example], str]:
    """Training examples and a label of where they came from (explicit file, mine output, or train qrels)."""
    if cfg.dataset:
        return examples_from_pairs(Path(cfg.dataset).expanduser().resolve()), cfg.dataset
    stages = workspace.stage_dir("mine") / "curriculum"
    if cfg.curriculum and (stages / "stages.json").is_file():
        return curriculum_examples(stages, cfg.seed), f"{stages} (easy to hard)"
    mined = workspace.stage_dir("mine") / "dataset"
    if mined.is_dir():
        found = mined_examples(mined.parent)
        if cfg.synthetic_share is None:
            return found.examples, str(mined)
        kept = found.with_share(cfg.synthetic_share, cfg.seed)
        return kept, f"{mined} (synthetic at most {cfg.synthetic_share:.0%}: {len(kept)} of {len(found.examples)})"
    if chunking is not None and chunking.method != "none":
        return _chunked_qrels_examples(dataset, workspace, cfg, chunking)
    return examples_from_qrels(dataset, cfg.train_split), f"qrels/{cfg.train_split}.tsv"


def mix_general(examples: list[Example], cfg: TrainConfig) -> tuple[list[Example], int]:
    """Add general-domain pairs so they make up ``general_share`` of the mix (sampled with the seed)."""
    if not cfg.general_pairs or cfg.general_share <= 0:
        return examples, 0
    general = examples_from_pairs(general_path(cfg.general_pairs))
    wanted = round(len(examples) * cfg.general_share / (1 - cfg.general_share))
    rng = random.Random(cfg.seed)
    picked = (
        [general[rng.randrange(len(general))] for _ in range(wanted)]
        if len(general) < wanted
        else rng.sample(general, wanted)
    )
    return [*examples, *picked], len(picked)


def _bench_alpha(workspace: Workspace) -> float:
    """Return the convex weight ``bench`` tuned on dev for the first model, or 0.5."""
    metrics = workspace.stage_dir("bench") / "metrics.json"
    if metrics.is_file():
        tuning = json.loads(metrics.read_text()).get("hybrid_tuning", {})
        for entry in tuning.values():
            return float(entry.get("alpha", 0.5))
    return 0.5


def _teacher(model: SentenceTransformer, dataset: BeirDataset, workspace: Workspace, reranker: str | None) -> Teacher:
    """Return a cross-encoder teacher when one is given, else the hybrid BM25 + dense teacher."""
    if reranker:
        return CrossEncoderTeacher(load_cross_encoder(reranker))
    texts = [doc.full_text() for doc in dataset.corpus.values()]
    return HybridTeacher(model, texts, alpha=_bench_alpha(workspace))


def _step_seconds(model: SentenceTransformer, examples: list[Example], cfg: TrainConfig) -> float:
    """Estimate one optimiser step: forward + backward (about 3x a forward) over every text of a batch."""
    sample = [e.positive for e in examples[: min(16, len(examples))]]
    start = time.perf_counter()
    model.encode(sample, batch_size=len(sample), show_progress_bar=False)
    per_text = (time.perf_counter() - start) / max(1, len(sample))
    texts_per_example = 2 + min(cfg.max_negatives, max((len(e.negatives) for e in examples), default=0))
    return 3.0 * per_text * cfg.batch_size * texts_per_example


def _truncated_positives(model: SentenceTransformer, examples: list[Example], cfg: TrainConfig) -> int | None:
    """Count training positives longer than ``max_seq_length`` and warn once with counts (never cut silently).

    Returns None for a model without a tokenizer (or with separate encoders, whose routes may differ).
    """
    if cfg.separate_encoders or getattr(model, "tokenizer", None) is None:
        return None
    from domainfit.data.truncation import check_truncation

    texts = [e.positive for e in examples]
    return check_truncation(model, texts, "training positives", cfg.base_model, prompt=cfg.document_prompt).n_over


def _training_args(cfg: TrainConfig, output_dir: Path, has_evaluator: bool, columns: list[str]) -> Any:
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
        disable_tqdm=True,  # progress is domainfit's own bar (`step_progress`)
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


def _inputs(data: Path, cfg: TrainConfig, source: str, examples: list[Example]) -> dict[str, Any]:
    """Return what decides whether a re-run is a no-op: data, examples, config, version."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(f"{e.anchor}\x00{e.positive}\x00{'|'.join(e.negatives)}\x00{e.score}\x01".encode())
    return {
        "data_sha256": data_fingerprint(data),
        "examples_sha256": digest.hexdigest(),
        "source": source,
        "config": cfg.model_dump(),
        "domainfit_version": __version__,
        "text_normalization": active_normalization(),
    }


def _history(log_history: list[dict[str, Any]], base_dev: float | None) -> dict[str, list[dict[str, float]]]:
    """Split the trainer's log into the training-loss curve and the dev-metric curve (step 0 = base model)."""
    loss = [{"step": e["step"], "loss": e["loss"]} for e in log_history if "loss" in e]
    key = primary_metric_key()
    dev = [{"step": 0, "ndcg@10": base_dev}] if base_dev is not None else []
    dev += [{"step": e["step"], "ndcg@10": e[key]} for e in log_history if key in e]
    return {"train_loss": loss, "dev_ndcg@10": dev}


def _card_widget(model: SentenceTransformer, examples: list[Example]) -> None:
    """Give the model card its widget from one training query (else it is computed behind a second progress bar)."""
    if examples:
        model.model_card_data.widget = [{"text": examples[0].anchor}]


def _base_model(cfg: TrainConfig) -> SentenceTransformer:
    """Load the base model with the configured prompts; with ``separate_encoders``, as query/document routes."""
    model = load_bi_encoder(cfg.base_model, max_seq_length=cfg.max_seq_length)
    model.prompts = {"query": cfg.query_prompt, "document": cfg.document_prompt}
    return separate_encoders(model) if cfg.separate_encoders else model


def _regularizer(model: SentenceTransformer, loss: Any, cfg: TrainConfig, steps: int) -> Regularizer | None:
    """Return the domain loss wrapped with the MSE pull towards the base model (``regularize = "mse"``), or None.

    Call before training: the model's current embeddings are the teacher. The
    general pairs are the user's (``general_pairs``) or, without them, the bundled set.
    """
    if cfg.regularize != "mse":
        return None
    from domainfit.train.regularize import build_regularizer

    source = cfg.general_pairs or BUNDLED
    pairs = [(e.anchor, e.positive) for e in examples_from_pairs(general_path(source))]
    return build_regularizer(
        model, loss, pairs, steps=steps, batch_size=cfg.batch_size, share=cfg.regularize_share,
        weight=cfg.regularize_weight, seed=cfg.seed, source=source,
    )  # fmt: skip


def _against_forgetting(cfg: TrainConfig, n_general: int, regularizer: Regularizer | None) -> dict[str, Any]:
    """Record which options against forgetting the run used (for the result, eval and report)."""
    return {
        "general_pairs": cfg.general_pairs if n_general else None,
        "general_examples": n_general,
        "regularize": regularizer.describe() if regularizer else None,
        "merge": cfg.merge,
    }


def run_train(
    data: Path,
    workspace: Workspace,
    cfg: TrainConfig,
    *,
    resume: bool = False,
    force: bool = False,
    reranker: str | None = None,
    chunking: ChunkingConfig | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> TrainResult:
    """Fine-tune the base model and save it into the workspace.

    Inputs: the BEIR folder, the workspace, the train config; ``resume``
    continues from the last checkpoint; ``force`` re-runs even when nothing
    changed; ``reranker`` is the cross-encoder teacher for ``margin-mse``;
    ``chunking``: the ``[chunking]`` settings, used when training straight from
    the train qrels (long documents as their best chunk); ``max_line_bytes``
    caps one JSONL record of the BEIR folder (``[data] max_line_mib``).
    Output: a `TrainResult`. Bad input raises `InputError` before anything is written.
    """
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import EarlyStoppingCallback
    from transformers.trainer_callback import PrinterCallback

    root = Path(data).expanduser().resolve()
    workspace.attach_data(root)  # a workspace inside, above or equal to the data is refused
    dataset = load_beir(root, max_line_bytes=max_line_bytes)
    examples, source = _examples(dataset, workspace, cfg, chunking)
    out_dir = workspace.stage_dir(STAGE)
    inputs = _inputs(root, cfg, source, examples)
    world = distributed.world_size()
    if world > 1:  # the effective batch is batch_size x processes
        inputs["world_size"] = world
    manifest = out_dir / "manifest.json"
    with distributed.main_process_lock(workspace):  # only rank 0 writes; the up-to-date check runs under the lock
        previous = json.loads(manifest.read_text()) if manifest.is_file() else {}
        if not force and not resume and previous.get("inputs") == inputs and (out_dir / "result.json").is_file():
            result = TrainResult(**json.loads((out_dir / "result.json").read_text()))
            result.up_to_date = True
            return result
        model = _base_model(cfg)
        _card_widget(model, examples)
        loss, spec = build_loss(model, cfg)
        teacher = _teacher(model, dataset, workspace, reranker) if spec.layout == "margin" else None
        mixed, n_general = mix_general(examples, cfg)
        truncated = _truncated_positives(model, mixed, cfg)
        in_order = cfg.curriculum and source.endswith("(easy to hard)")
        train_ds = to_dataset(
            mixed, spec.layout, max_negatives=cfg.max_negatives, teacher=teacher, seed=cfg.seed, shuffle=not in_order
        )
        evaluator = dev_evaluator(
            dataset,
            cfg.eval_split,
            max_corpus=cfg.eval_max_corpus,
            seed=cfg.seed,
            corpus=cfg.eval_corpus,
            pool=PoolSource(
                cfg.base_model, cfg.eval_pool_depth, cfg.max_seq_length, workspace.cache_dir / "embeddings"
            ),
        )
        base_dev = None
        if evaluator is not None and distributed.is_main_process():  # the other ranks do not report it
            base_dev = float(evaluator(model)[evaluator.primary_metric])
        steps_per_epoch = math.ceil(len(train_ds) / (cfg.batch_size * world))
        steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(steps_per_epoch * cfg.epochs)
        estimate = _step_seconds(model, examples, cfg) * steps
        ckpt_dir = workspace.root / CHECKPOINTS
        last = _last_checkpoint(ckpt_dir) if resume else None
        if not resume and ckpt_dir.exists() and distributed.is_main_process():
            shutil.rmtree(ckpt_dir)
        distributed.barrier()
        args = _training_args(cfg, ckpt_dir, evaluator is not None, list(train_ds.column_names))
        if in_order:
            args.batch_sampler = sequential_batches
        if cfg.separate_encoders:  # dataset columns -> query / document route
            args.router_mapping = router_mapping(train_ds.column_names)
        regularizer = _regularizer(model, loss, cfg, steps)
        callbacks: list[Any] = [completion_callback()]  # marks each checkpoint complete once saved
        if evaluator is not None and cfg.early_stopping_patience:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            loss=regularizer.loss if regularizer else loss,
            evaluator=evaluator,
            callbacks=callbacks,
        )
        trainer.remove_callback(PrinterCallback)  # its log dicts on stdout would break --json
        if not is_quiet():
            print(f"training {len(train_ds)} examples ({spec.name}), {steps} steps, estimated {estimate / 60:.1f} min")
        start = time.perf_counter()
        with progress_bar("training", steps) as advance:  # the one progress display: the trainer's tqdm is off
            trainer.add_callback(step_progress(advance))
            trainer.train(resume_from_checkpoint=str(last) if last else None)
        seconds = time.perf_counter() - start
        best_step = _step_of(trainer.state.best_model_checkpoint)
        best = float(trainer.state.best_metric) if trainer.state.best_metric is not None else None
        merged, choice = None, None
        if cfg.merge and evaluator is not None and distributed.is_main_process():
            base_model = _base_model(cfg)
            merged, choice = choose_merge(base_model, model, lambda m: float(evaluator(m)[evaluator.primary_metric]))
        result = TrainResult(
            model_path=str(out_dir / "model"),
            training_source=source,
            train_examples=len(train_ds),
            layout=spec.layout,
            steps=int(trainer.state.global_step),
            estimated_seconds=round(estimate, 1),
            seconds=round(seconds, 1),
            base_dev_ndcg10=base_dev,
            best_dev_ndcg10=best,
            best_step=best_step,
            resumed_from=str(last) if last else None,
            general_examples=n_general,
            merge_weight=choice.weight if choice else None,
            merge_dev_scores={str(k): v for k, v in choice.scores.items()} if choice else None,
            against_forgetting=_against_forgetting(cfg, n_general, regularizer),
            separate_encoders=cfg.separate_encoders,
            world_size=world,
            text_normalization=active_normalization(),
            truncated_positives=truncated,
        )
        if not distributed.is_main_process():
            return result
        with staged_dir(out_dir) as tmp:
            model.save(str(tmp / "model"))
            write_model_text_settings(tmp / "model")  # how the training text was normalised
            if merged is not None:
                merged.save(str(tmp / "merged"))
                write_model_text_settings(tmp / "merged")
            atomic_write_json(tmp / "history.json", _history(trainer.state.log_history, base_dev))
            atomic_write_json(tmp / "result.json", asdict(result))
            atomic_write_json(
                tmp / "config.json", {"train": cfg.model_dump(), "loss": loss_config(cfg), "data": str(root)}
            )
            workspace.write_manifest(
                tmp, STAGE, inputs, ["history.json", "result.json", "config.json", "model/model.safetensors"]
            )
    return result


def _last_checkpoint(folder: Path) -> Path | None:
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


def _step_of(checkpoint: str | None) -> int | None:
    """Return the step number in a checkpoint path, or None."""
    if not checkpoint:
        return None
    tail = Path(checkpoint).name.rpartition("-")[2]
    return int(tail) if tail.isdigit() else None
