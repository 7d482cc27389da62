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
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from domainfit import __version__
from domainfit.core.files import atomic_write_json
from domainfit.core.models import load_cross_encoder
from domainfit.core.progress import is_quiet, progress_bar, step_progress
from domainfit.core.workspace import Workspace
from domainfit.data.beir import BeirDataset, load_beir
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.stages import train_levels
from domainfit.stages.contract import TRAIN, Previous, Stage, read_result, run_stage
from domainfit.stages.inputs import DataFiles, Input, Model, Section, Text, Value
from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.text.model_text import write_model_text_settings
from domainfit.train import distributed
from domainfit.train.checkpoints import completion_callback
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
from domainfit.train.evaluator import PoolSource, dev_evaluator
from domainfit.train.levels import level_config, level_model
from domainfit.train.losses import build_loss, loss_config
from domainfit.train.merge import choose_merge
from domainfit.train.origins import mined_examples
from domainfit.train.router import router_mapping
from domainfit.train.speed import length_grouped_batches, step_timer, torch_threads
from domainfit.train.teacher import CrossEncoderTeacher, HybridTeacher
from domainfit.train.trainer import (
    card_widget,
    domain_regularizer,
    forgetting_options,
    last_checkpoint,
    load_base_model,
    loss_history,
    mix_general,
    step_of,
    step_seconds,
    training_args,
    truncated_positives,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from domainfit.data.config import ChunkingConfig

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
    level: str = "full"  # see domainfit.train.levels
    level_details: dict[str, Any] | None = None  # what the level did (frozen layers, prompts tried, adapter epochs)
    step_seconds: float | None = None  # median optimiser step time (warm-up step left out; None: no trainer)
    batch_grouping: str = "none"  # see domainfit.train.speed
    memory_mib: dict[str, Any] | None = None  # resident memory of training (domainfit.train.speed step_timer)


def _chunked_qrels_examples(
    dataset: BeirDataset, workspace: Workspace, cfg: TrainConfig, chunking: ChunkingConfig, text: TextConfig
) -> tuple[list[Example], str]:
    """Train-qrels examples whose long documents are replaced by their best chunk under the base model."""
    from domainfit.retrieval.dense import DenseRetriever
    from domainfit.synth.chunked import chunk_pair_positives
    from domainfit.synth.datasets import labelled_pairs

    examples_from_qrels(dataset, cfg.train_split, text)  # the same errors as without chunking
    dense = DenseRetriever(
        cfg.base_model, cache_dir=workspace.cache_dir / "embeddings", max_seq_length=cfg.max_seq_length, text=text
    )
    pairs, _, chosen, _ = chunk_pair_positives(
        dense, chunking, dataset.corpus, labelled_pairs(dataset, cfg.train_split)
    )
    label = f"qrels/{cfg.train_split}.tsv"
    if chosen:
        label += f" ({len(chosen)} long documents as their best chunk)"
    return [Example(p.query, p.positive(dataset.corpus), settings=text) for p in pairs], label


def _examples(
    dataset: BeirDataset,
    workspace: Workspace,
    cfg: TrainConfig,
    chunking: ChunkingConfig | None = None,
    text: TextConfig = DEFAULT_TEXT,
) -> tuple[list[Example], str]:
    """Training examples and a label of where they came from (explicit file, mine output, or train qrels)."""
    if cfg.dataset:
        return examples_from_pairs(Path(cfg.dataset).expanduser().resolve(), text), cfg.dataset
    stages = workspace.stage_dir("mine") / "curriculum"
    if cfg.curriculum and (stages / "stages.json").is_file():
        return curriculum_examples(stages, cfg.seed, text), f"{stages} (easy to hard)"
    mined = workspace.stage_dir("mine") / "dataset"
    if mined.is_dir():
        found = mined_examples(mined.parent, text)
        if cfg.synthetic_share is None:
            return found.examples, str(mined)
        kept = found.with_share(cfg.synthetic_share, cfg.seed)
        return kept, f"{mined} (synthetic at most {cfg.synthetic_share:.0%}: {len(kept)} of {len(found.examples)})"
    if chunking is not None and chunking.method != "none":
        return _chunked_qrels_examples(dataset, workspace, cfg, chunking, text)
    return examples_from_qrels(dataset, cfg.train_split, text), f"qrels/{cfg.train_split}.tsv"


def _bench_alpha(workspace: Workspace) -> float:
    """Return the convex weight ``bench`` tuned on dev for the first model, or 0.5."""
    metrics = workspace.stage_dir("bench") / "metrics.json"
    if metrics.is_file():
        tuning = json.loads(metrics.read_text()).get("hybrid_tuning", {})
        for entry in tuning.values():
            return float(entry.get("alpha", 0.5))
    return 0.5


def _teacher(
    model: SentenceTransformer, dataset: BeirDataset, workspace: Workspace, reranker: str | None, text: TextConfig
) -> Teacher:
    """Return a cross-encoder teacher when one is given, else the hybrid BM25 + dense teacher."""
    if reranker:
        return CrossEncoderTeacher(load_cross_encoder(reranker))
    texts = [doc.full_text() for doc in dataset.corpus.values()]
    return HybridTeacher(model, texts, alpha=_bench_alpha(workspace), text=text)


class TrainStage(Stage[TrainResult]):
    """Fine-tune the base model on the workspace's training data and save it.

    Inputs: the workspace, the BEIR folder, the ``[train]`` settings; ``resume``
    continues from the last checkpoint (and runs even when nothing changed);
    ``reranker`` is the cross-encoder teacher for ``margin-mse``; ``chunking``:
    the ``[chunking]`` settings, used when training straight from the train qrels
    (long documents as their best chunk); the largest JSONL record; ``text``: the
    ``[text]`` settings every training text is prepared under (recorded in the
    model folder). Under a launcher every rank trains; only rank 0 writes.
    Output: a `TrainResult`. Bad input raises `InputError` before anything is written.
    """

    name: ClassVar[str] = "train"
    result_type: ClassVar[type[TrainResult]] = TrainResult
    command: ClassVar[str | None] = "train"
    panel: ClassVar[str] = TRAIN
    reads: ClassVar[tuple[str, ...]] = ("mine", "bench")
    report_config: ClassVar[tuple[str, ...]] = ("train",)

    def __init__(
        self,
        workspace: Workspace,
        data: Path | str,
        cfg: TrainConfig,
        *,
        resume: bool = False,
        reranker: str | None = None,
        chunking: ChunkingConfig | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        super().__init__(workspace, data)
        self.cfg, self.resume, self.reranker, self.chunking = cfg, resume, reranker, chunking
        self.max_line_bytes, self.text = max_line_bytes, text

    def check(self) -> None:
        """Load the data and the training examples (mine's dataset, a pair file or the train qrels)."""
        assert self.data is not None
        self.dataset = load_beir(self.data, max_line_bytes=self.max_line_bytes, text=self.text)
        self.examples, self.source = _examples(self.dataset, self.workspace, self.cfg, self.chunking, self.text)
        train_levels.check_level(self)

    def inputs(self) -> dict[str, Input]:
        """Declare the data, the examples (their content), the settings, the teacher and the world size."""
        assert self.data is not None
        digest = hashlib.sha256()
        for e in self.examples:
            digest.update(f"{e.anchor}\x00{e.positive}\x00{'|'.join(e.negatives)}\x00{e.score}\x01".encode())
        inputs: dict[str, Input] = {
            "data_sha256": DataFiles(self.data),
            "examples_sha256": Value(digest.hexdigest(), of="upstream"),
            "source": Value(self.source, of="upstream"),
            "config": Section(self.cfg),
            "domainfit_version": Value(__version__),
            "text_normalization": Text(self.text, only_normalization=True),
        }
        if self.cfg.loss == "margin-mse":  # the teacher: a cross-encoder, or bench's tuned hybrid weight
            inputs["teacher"] = (
                Model(self.reranker, 16) if self.reranker else Value(_bench_alpha(self.workspace), of="upstream")
            )
        world = distributed.world_size()
        if world > 1:  # the effective batch is batch_size x processes
            inputs["world_size"] = Value(world)
        return inputs

    def writes(self) -> bool:
        """Only the main process (rank 0) writes."""
        return distributed.is_main_process()

    def compute(self, out: Path, previous: Previous | None) -> TrainResult:
        """Build the loss, data, evaluator and trainer; train; choose a merge; save the model and records."""
        from sentence_transformers import SentenceTransformerTrainer
        from transformers import EarlyStoppingCallback
        from transformers.trainer_callback import PrinterCallback

        without_trainer = train_levels.compute_level(self, out)  # prompts, adapter, top-layers chosen on dev
        if without_trainer is not None:
            return without_trainer
        cfg, dataset, workspace, text = level_config(self.cfg), self.dataset, self.workspace, self.text
        resume = self.resume
        examples, source, world = self.examples, self.source, distributed.world_size()
        model, level_details = level_model(cfg)
        card_widget(model, examples)
        loss, spec = build_loss(model, cfg)
        teacher = _teacher(model, dataset, workspace, self.reranker, text) if spec.layout == "margin" else None
        mixed, n_general = mix_general(examples, cfg, text)
        truncated = truncated_positives(model, mixed, cfg) if cfg.level != "static" else None
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
            max_queries=cfg.eval_max_queries,
            pool=PoolSource(
                cfg.base_model, cfg.eval_pool_depth, cfg.max_seq_length, workspace.cache_dir / "embeddings", text
            ),
        )
        base_dev = None
        if evaluator is not None and distributed.is_main_process():  # the other ranks do not report it
            base_dev = float(evaluator(model)[evaluator.primary_metric])
        steps_per_epoch = math.ceil(len(train_ds) / (cfg.batch_size * world))
        steps = cfg.max_steps if cfg.max_steps > 0 else math.ceil(steps_per_epoch * cfg.epochs)
        estimate = step_seconds(model, examples, cfg) * steps
        ckpt_dir = workspace.root / CHECKPOINTS
        last = last_checkpoint(ckpt_dir) if resume else None
        if not resume and ckpt_dir.exists() and distributed.is_main_process():
            shutil.rmtree(ckpt_dir)
        distributed.barrier()
        args = training_args(cfg, ckpt_dir, evaluator is not None, list(train_ds.column_names))
        if in_order:
            args.batch_sampler = sequential_batches
        elif cfg.batch_grouping == "length" and "anchor" in train_ds.column_names:
            args.batch_sampler = length_grouped_batches
        if cfg.separate_encoders:  # dataset columns -> query / document route
            args.router_mapping = router_mapping(train_ds.column_names)
        regularizer = domain_regularizer(model, loss, cfg, steps, text)
        timer = step_timer()
        callbacks: list[Any] = [completion_callback(), timer]  # marks each checkpoint complete once saved
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
            with torch_threads(cfg.threads):
                trainer.train(resume_from_checkpoint=str(last) if last else None)
        seconds = time.perf_counter() - start
        best_step = step_of(trainer.state.best_model_checkpoint)
        best = float(trainer.state.best_metric) if trainer.state.best_metric is not None else None
        merged, choice = None, None
        if cfg.merge and evaluator is not None and distributed.is_main_process():
            base_model = load_base_model(cfg)
            merged, choice = choose_merge(base_model, model, lambda m: float(evaluator(m)[evaluator.primary_metric]))
        result = TrainResult(
            model_path=str(self.folder / "model"),
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
            against_forgetting=forgetting_options(cfg, n_general, regularizer),
            separate_encoders=cfg.separate_encoders,
            world_size=world,
            text_normalization=text.normalization(),
            truncated_positives=truncated,
            level=cfg.level,
            level_details=level_details,
            step_seconds=timer.median(),
            batch_grouping="length" if args.batch_sampler is length_grouped_batches else "none",
            memory_mib=timer.memory(),
        )
        if not self.writes():
            return result
        model.save(str(out / "model"))
        write_model_text_settings(out / "model", text)  # how the training text was normalised
        if merged is not None:
            merged.save(str(out / "merged"))
            write_model_text_settings(out / "merged", text)
        atomic_write_json(out / "history.json", loss_history(trainer.state.log_history, base_dev))
        atomic_write_json(out / "result.json", asdict(result))
        atomic_write_json(
            out / "config.json", {"train": cfg.model_dump(), "loss": loss_config(cfg), "data": str(self.data)}
        )
        return result

    def outputs(self, out: Path) -> list[str]:
        """List the history, result, config and the model's weights (the adapter's, for the adapter level)."""
        model = out / "model"
        weights = sorted(str(p.relative_to(out)) for p in model.rglob("*.safetensors")) if model.is_dir() else []
        return ["history.json", "result.json", "config.json", *weights]

    def load(self, folder: Path) -> TrainResult:
        """Read ``result.json`` back."""
        return read_result(folder / "result.json", lambda data: TrainResult(**data))


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
    text: TextConfig = DEFAULT_TEXT,
) -> TrainResult:
    """Fine-tune the base model and save it into the workspace (see `TrainStage`).

    ``force`` re-runs even when nothing changed (so does ``resume``). Output: a `TrainResult`.
    """
    stage = TrainStage(workspace, data, cfg, resume=resume, reranker=reranker, chunking=chunking,
                       max_line_bytes=max_line_bytes, text=text)  # fmt: skip
    return run_stage(stage, force=force or resume).result
