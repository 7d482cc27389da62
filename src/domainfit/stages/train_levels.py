"""The ``train`` stage's levels that need no trainer (prompts, adapter) or several trainer runs (top-layers on dev).

Called from `domainfit.stages.train.TrainStage.compute`; each writes the same
records as a fine-tune (``model/``, ``history.json``, ``result.json``,
``config.json``) so ``eval``, ``decide`` and the report read every level alike:

- ``prompts``: ``model/`` is the base model saved with the prompts chosen on dev;
- ``adapter``: ``model/`` is the adapter folder (`domainfit.retrieval.query_adapter`);
  documents keep the base model's vectors;
- ``top-layers`` with ``top_layers = 0``: each candidate N is trained as a level-2
  run and the best on dev is kept (its ``result.json`` records every candidate).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from domainfit.core.errors import InputError
from domainfit.core.files import atomic_write_json
from domainfit.core.progress import is_quiet
from domainfit.retrieval.cache import EmbeddingCache
from domainfit.retrieval.dense import encode_texts
from domainfit.text.model_text import write_model_text_settings
from domainfit.train.data import Example
from domainfit.train.devscore import DevSet
from domainfit.train.evaluator import PoolSource, dev_evaluator
from domainfit.train.trainer import load_base_model, mix_general

#: The `domainfit.stages.train.TrainStage` running the level (typed loosely: that module imports this one).
TrainStage = Any
#: Its `domainfit.stages.train.TrainResult`.
TrainResult = Any


def dev_set(stage: TrainStage) -> DevSet | None:
    """Return the dev queries and pool the trainer would evaluate on (None without a dev split)."""
    cfg, workspace = stage.cfg, stage.workspace
    evaluator = dev_evaluator(
        stage.dataset, cfg.eval_split, max_corpus=cfg.eval_max_corpus, seed=cfg.seed, corpus=cfg.eval_corpus,
        max_queries=cfg.eval_max_queries, pool=PoolSource(
            cfg.base_model, cfg.eval_pool_depth, cfg.max_seq_length, workspace.cache_dir / "embeddings", stage.text
        ),
    )  # fmt: skip
    return DevSet.of(evaluator) if evaluator is not None else None


def check_level(stage: TrainStage) -> None:
    """Refuse level settings that cannot run, before any work (one-line `InputError`)."""
    cfg = stage.cfg
    where = "[train]"
    if cfg.level == "prompts" and cfg.eval_split not in stage.dataset.qrels:
        raise InputError(where, 0, "level", f"prompts are chosen on dev: no qrels/{cfg.eval_split}.tsv")
    if cfg.level in ("prompts", "adapter", "static") and (cfg.separate_encoders or cfg.merge):
        raise InputError(
            where, 0, "level", f"level {cfg.level} trains no encoder: separate_encoders/merge do not apply"
        )
    if cfg.level in ("prompts", "adapter", "static") and cfg.regularize != "none":
        raise InputError(where, 0, "regularize", f"level {cfg.level}: regularize applies to full/top-layers only")
    if cfg.level == "top-layers":
        from domainfit.train.levels import model_layers

        layers = model_layers(cfg.base_model)
        wanted = [cfg.top_layers] if cfg.top_layers else list(cfg.top_layers_candidates)
        if not wanted:
            raise InputError(where, 0, "top_layers_candidates", "give at least one N, or set top_layers")
        bad = [n for n in wanted if n < 1 or (layers is not None and n > layers)]
        if bad:
            raise InputError(where, 0, "top_layers", f"{bad[0]} is not between 1 and the model's {layers} layers")
        if cfg.separate_encoders:
            raise InputError(where, 0, "level", "top-layers with separate_encoders is not supported")
    if cfg.level == "static":
        from domainfit.train.static import check_static_source

        check_static_source(cfg.static_source)


def _write_records(stage: TrainStage, out: Path, result: TrainResult, history: dict[str, Any]) -> TrainResult:
    """Write ``history.json``, ``result.json`` and ``config.json`` as a fine-tune does."""
    atomic_write_json(out / "history.json", history)
    atomic_write_json(out / "result.json", asdict(result))
    atomic_write_json(out / "config.json", {"train": stage.cfg.model_dump(), "data": str(stage.data)})
    return result


def _result(stage: TrainStage, out: Path, **fields: Any) -> TrainResult:
    """Build the `TrainResult` of a level without a trainer (through the stage, which knows the class)."""
    return stage.result_type(
        model_path=str(stage.folder / "model"), training_source=stage.source, resumed_from=None,
        text_normalization=stage.text.normalization(), level=stage.cfg.level, **fields,
    )  # fmt: skip


def compute_level(stage: TrainStage, out: Path) -> TrainResult | None:
    """Run a level that is not one trainer run (prompts, adapter, top-layers chosen on dev); None for the others."""
    if stage.cfg.level == "prompts":
        return compute_prompts(stage, out)
    if stage.cfg.level == "adapter":
        return compute_adapter(stage, out)
    if stage.cfg.level == "top-layers" and not stage.cfg.top_layers:
        return compute_top_layers_on_dev(stage, out)
    return None


def compute_prompts(stage: TrainStage, out: Path) -> TrainResult:
    """Level 1: choose the prompts on dev, save the base model with them as ``model/``."""
    from domainfit.train.prompts import choose_prompts, prompt_candidates

    cfg = stage.cfg
    dev = dev_set(stage)
    if dev is None:
        raise InputError("[train]", 0, "eval_split", f"no relevant pairs in qrels/{cfg.eval_split}.tsv to choose on")
    model = load_base_model(cfg)
    candidates = prompt_candidates(cfg.prompt_candidates, (cfg.query_prompt, cfg.document_prompt))
    start = time.perf_counter()
    choice = choose_prompts(model, dev, candidates, cache_dir=stage.workspace.cache_dir / "embeddings", text=stage.text)
    seconds = time.perf_counter() - start
    model.prompts = {"query": choice.query_prompt, "document": choice.document_prompt}
    model.save(str(out / "model"))
    write_model_text_settings(out / "model", stage.text)
    if not is_quiet():
        print(
            f"prompts: {len(candidates)} candidates on dev; chosen {choice.query_prompt!r} / {choice.document_prompt!r}"
        )
    result = _result(
        stage, out, train_examples=0, layout="none", steps=0, estimated_seconds=0.0, seconds=round(seconds, 1),
        base_dev_ndcg10=choice.base_dev_ndcg10, best_dev_ndcg10=choice.dev_ndcg10, best_step=None,
        level_details={"prompts": asdict(choice)},
    )  # fmt: skip
    return _write_records(stage, out, result, {"prompt_candidates": choice.candidates})


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    """Stack equal-width vectors."""
    return np.stack(rows).astype(np.float32)


def adapter_inputs(
    stage: TrainStage, examples: list[Example], k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Encode the training queries, positives and first ``k`` negatives with the base model (embedding cache)."""
    from domainfit.core.models import model_fingerprint

    cfg = stage.cfg
    model = load_base_model(cfg)
    cache = EmbeddingCache(stage.workspace.cache_dir / "embeddings", model_fingerprint(model))
    q_name = "query" if cfg.query_prompt else None
    d_name = "document" if cfg.document_prompt else None

    def enc(texts: list[str], name: str | None, what: str, task: str) -> np.ndarray:
        return encode_texts(model, texts, prompt_name=name, cache=cache, description=what, task=task, text=stage.text)

    queries = enc([e.anchor for e in examples], q_name, "adapter: queries", "query")
    positives = enc([e.positive for e in examples], d_name, "adapter: positives", "document")
    negatives = None
    if k:
        flat = enc([n for e in examples for n in e.negatives[:k]], d_name, "adapter: negatives", "document")
        negatives = flat.reshape(len(examples), k, -1)
    return queries, positives, negatives, {"model": model, "cache": cache, "query": q_name, "document": d_name}


def compute_adapter(stage: TrainStage, out: Path) -> TrainResult:
    """Train the query-side adapter on base-model embeddings of the pairs; save it as ``model/``."""
    from domainfit.train.adapter import fit_on_dev, fit_query_adapter, save_adapter

    cfg = stage.cfg
    examples, n_general = mix_general(stage.examples, cfg, stage.text)
    k = min([cfg.max_negatives, *(len(e.negatives) for e in examples)]) if examples else 0
    start = time.perf_counter()
    queries, positives, negatives, enc = adapter_inputs(stage, examples, k)
    dev = dev_set(stage)
    dev_score = None
    if dev is not None:
        model = enc["model"]
        dev_docs = encode_texts(model, dev.docs, prompt_name=enc["document"], cache=enc["cache"],
                                description="adapter: dev documents", task="document", text=stage.text)  # fmt: skip
        dev_queries = encode_texts(model, dev.queries, prompt_name=enc["query"], cache=enc["cache"],
                                   description="adapter: dev queries", task="query", text=stage.text)  # fmt: skip

        def dev_score(query_map: Any) -> float:
            return dev.ndcg10(query_map(dev_queries), dev_docs)

    encoded = time.perf_counter()
    settings: dict[str, Any] = {
        "kind": cfg.adapter, "hidden": cfg.adapter_hidden, "rank": cfg.adapter_rank, "epochs": cfg.adapter_epochs,
        "batch_size": cfg.adapter_batch_size or cfg.batch_size, "learning_rate": cfg.adapter_learning_rate,
        "temperature": cfg.temperature,
        "seed": cfg.seed, "patience": cfg.adapter_patience, "positive_keys": [e.positive for e in examples],
    }  # fmt: skip
    trials: list[dict[str, Any]] | None = None
    if dev_score is not None and negatives is not None and cfg.adapter_hard_negatives == "dev":
        fit, trials = fit_on_dev(queries, positives, negatives, dev_score, **settings)
    else:
        used = None if cfg.adapter_hard_negatives == "never" else negatives
        fit = fit_query_adapter(queries, positives, used, dev_score=dev_score, **settings)
    seconds = time.perf_counter() - start
    base_dev = fit.dev_history[0]["ndcg@10"] if fit.dev_history else None
    best_dev = fit.best_dev
    details = {
        "adapter": cfg.adapter,
        "hidden": cfg.adapter_hidden if cfg.adapter == "mlp" else None,
        "rank": cfg.adapter_rank if cfg.adapter == "lowrank" else None,
        "batch_size": settings["batch_size"],
        "negatives_per_query": fit.hard_negatives,
        "negatives_mined_per_query": k,
        "hard_negative_trials": trials,
        "epochs_run": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "encode_seconds": round(encoded - start, 1),
        "documents_re_embedded": 0,
    }
    save_adapter(out / "model", fit, cfg.base_model, info={"trained": details})
    if not is_quiet():
        print(f"adapter ({cfg.adapter}): {len(examples)} pairs, {fit.epochs_run} epochs, best epoch {fit.best_epoch}")
    result = _result(
        stage, out, train_examples=len(examples), layout="embeddings", steps=fit.epochs_run,
        estimated_seconds=0.0, seconds=round(seconds, 1), base_dev_ndcg10=base_dev, best_dev_ndcg10=best_dev,
        best_step=fit.best_epoch, general_examples=n_general, level_details=details,
    )  # fmt: skip
    return _write_records(stage, out, result, {"train_loss": fit.loss_history, "dev_ndcg@10": fit.dev_history})


def compute_top_layers_on_dev(stage: TrainStage, out: Path) -> TrainResult:
    """Level 2 with N chosen on dev: train each candidate N, keep the best dev NDCG@10 (ties: the smaller N)."""
    cfg = stage.cfg
    tried: list[dict[str, Any]] = []
    best: tuple[float, Path, TrainResult] | None = None
    with tempfile.TemporaryDirectory(dir=out, prefix=".candidates-") as scratch:
        for n in cfg.top_layers_candidates:
            sub = type(stage)(stage.workspace, stage.data or "", cfg.model_copy(update={"top_layers": n}),
                             reranker=stage.reranker, chunking=stage.chunking, text=stage.text)  # fmt: skip
            sub.dataset, sub.examples, sub.source = stage.dataset, stage.examples, stage.source
            folder = Path(scratch) / f"top-{n}"
            folder.mkdir()
            result = sub.compute(folder, None)
            score = result.best_dev_ndcg10 if result.best_dev_ndcg10 is not None else -1.0
            tried.append({"top_layers": n, "best_dev_ndcg@10": result.best_dev_ndcg10, "seconds": result.seconds})
            if best is None or score > best[0]:
                best = (score, folder, result)
        assert best is not None
        _, folder, result = best
        for item in folder.iterdir():
            shutil.move(str(item), str(out / item.name))
    result.seconds = round(sum(t["seconds"] for t in tried), 1)
    result.level_details = {**(result.level_details or {}), "chosen_on_dev": tried}
    atomic_write_json(out / "result.json", asdict(result))
    return result
