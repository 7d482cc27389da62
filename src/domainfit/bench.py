"""The ``bench`` stage: BM25, dense, hybrid and reranked baselines on one split.

Input: a BEIR folder and a `BenchConfig`. Output, in ``<workspace>/bench/``:
``metrics.json`` (overall, per slice, significance vs BM25, hybrid tuning),
``runs/<system>.trec``, ``per_query.json``, ``summary.md``, ``config.json``
(resolved) and ``manifest.json``. Re-running with unchanged data and config is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from domainfit import __version__
from domainfit.bench_summary import markdown_summary
from domainfit.config import BenchConfig
from domainfit.data.beir import BeirDataset, load_beir
from domainfit.data.jsonl import MAX_LINE_BYTES
from domainfit.data.splits import check_qrels_leakage
from domainfit.errors import InputError
from domainfit.evaluation.metrics import evaluate, per_query
from domainfit.evaluation.significance import compare_runs
from domainfit.evaluation.slices import slice_labels, slice_table
from domainfit.evaluation.trec import write_trec_run
from domainfit.models import load_cross_encoder
from domainfit.retrieval.dense import DenseRetriever
from domainfit.retrieval.hybrid import convex, rrf, tune_convex
from domainfit.retrieval.lexical import BM25Retriever
from domainfit.retrieval.rerank import rerank
from domainfit.types import Qrels, Run
from domainfit.workspace import Workspace, atomic_write_json, atomic_write_text, sha256_file, staged_dir

STAGE = "bench"


@dataclass
class SystemResult:
    """One evaluated system: its name, kind, settings and mean metrics."""

    name: str
    kind: str
    config: dict[str, Any]
    metrics: dict[str, float]
    seconds: float


@dataclass
class BenchResult:
    """Everything ``bench`` measured; also what ``metrics.json`` holds."""

    split: str
    n_queries: int
    n_documents: int
    systems: list[SystemResult]
    slices: dict[str, list[dict[str, Any]]]
    significance: dict[str, Any]
    hybrid_tuning: dict[str, Any]
    output_dir: str
    up_to_date: bool = False
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-serialisable form written to ``metrics.json``."""
        data = asdict(self)
        data["format_version"] = 1
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchResult:
        """Rebuild a result from ``metrics.json``."""
        data = {k: v for k, v in data.items() if k != "format_version"}
        data["systems"] = [SystemResult(**s) for s in data["systems"]]
        return cls(**data)


def short_name(model: str) -> str:
    """Return a short, file-name-safe label for a model name or path."""
    return Path(model.rstrip("/")).name.replace(" ", "_") or "model"


def data_fingerprint(root: Path) -> str:
    """Hash the files of a BEIR folder (corpus, queries, every qrels split)."""
    digest = hashlib.sha256()
    files = [root / "corpus.jsonl", root / "queries.jsonl", *sorted((root / "qrels").glob("*.tsv"))]
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def _load(root: Path, config: BenchConfig, max_line_bytes: int) -> tuple[BeirDataset, Qrels, Qrels | None]:
    """Load and validate the dataset; return it with the evaluation and tuning qrels."""
    dataset = load_beir(root, max_line_bytes=max_line_bytes)
    if config.split not in dataset.qrels:
        available = ", ".join(sorted(dataset.qrels)) or "none"
        raise InputError(root / "qrels", 0, "split", f"no qrels/{config.split}.tsv (available: {available})")
    tune = dataset.qrels.get(config.tune_split) if config.tune_split else None
    return dataset, dataset.qrels[config.split], tune


def _qtexts(dataset: BeirDataset, qrels: Qrels) -> dict[str, str]:
    """Texts of the queries judged in ``qrels``."""
    return {qid: dataset.queries[qid].text for qid in qrels}


class _Bench:
    """Runs every system of one bench invocation and keeps their runs and timings."""

    def __init__(
        self,
        dataset: BeirDataset,
        qrels: Qrels,
        tune: Qrels | None,
        config: BenchConfig,
        cache: Path,
    ) -> None:
        self.dataset, self.qrels, self.tune, self.config, self.cache = (
            dataset,
            qrels,
            tune,
            config,
            cache,
        )
        self.runs: dict[str, Run] = {}
        self.systems: list[SystemResult] = []
        self.tuning: dict[str, Any] = {}
        self.notes: list[str] = []

    def add(self, name: str, kind: str, run: Run, config: dict[str, Any], seconds: float) -> None:
        """Record a system's run and its mean metrics."""
        self.runs[name] = run
        metrics = evaluate(self.qrels, run, self.config.metrics)
        self.systems.append(SystemResult(name, kind, config, metrics, round(seconds, 3)))

    def score(self, qrels: Qrels, run: Run) -> float:
        """Primary metric of ``run`` on ``qrels``."""
        return evaluate(qrels, run, [self.config.primary_metric])[self.config.primary_metric]

    def run_all(self) -> None:
        """BM25, then each dense model with its hybrids, then the optional reranker."""
        cfg = self.config
        queries = _qtexts(self.dataset, self.qrels)
        tune_queries = _qtexts(self.dataset, self.tune) if self.tune else {}
        start = time.perf_counter()
        bm25 = BM25Retriever(k1=cfg.bm25_k1, b=cfg.bm25_b)
        bm25.index(self.dataset.corpus)
        self.add(
            "bm25",
            "lexical",
            bm25.search(queries, cfg.depth),
            bm25.get_config_dict(),
            time.perf_counter() - start,
        )
        bm25_tune = bm25.search(tune_queries, cfg.depth) if tune_queries else {}
        for model in cfg.models:
            self._dense_and_hybrid(model, queries, tune_queries, self.runs["bm25"], bm25_tune)
        if cfg.reranker:
            self._rerank(queries)

    def _dense_and_hybrid(
        self,
        model: str,
        queries: dict[str, str],
        tune_queries: dict[str, str],
        bm25: Run,
        bm25_tune: Run,
    ) -> None:
        """Evaluate one bi-encoder and its RRF and convex hybrids with BM25."""
        cfg = self.config
        label = short_name(model)
        suffix = f":{label}" if len(cfg.models) > 1 else ""
        start = time.perf_counter()
        dense = DenseRetriever(
            model,
            cache_dir=self.cache / "embeddings",
            batch_size=cfg.batch_size,
            max_seq_length=cfg.max_seq_length,
        )
        dense.index(self.dataset.corpus)
        run = dense.search(queries, cfg.depth)
        self.add(f"dense{suffix}", "dense", run, dense.get_config_dict(), time.perf_counter() - start)
        if not cfg.hybrid:
            return
        start = time.perf_counter()
        self.add(
            f"hybrid-rrf{suffix}",
            "hybrid",
            rrf([bm25, run], k=cfg.rrf_k, depth=cfg.depth),
            {"fusion": "rrf", "k": cfg.rrf_k, "model": model},
            time.perf_counter() - start,
        )
        if self.tune:
            tuned = tune_convex(
                bm25_tune,
                dense.search(tune_queries, cfg.depth),
                self.tune,
                self.score,
                cfg.primary_metric,
            )
            alpha = tuned.alpha
            self.tuning[label] = {
                "split": cfg.tune_split,
                "alpha": alpha,
                "metric": tuned.metric,
                "dev_scores": {str(a): s for a, s in tuned.scores.items()},
            }
        else:
            alpha = 0.5
            self.notes.append(f"no '{cfg.tune_split}' split to tune the convex weight: used alpha=0.5")
            self.tuning[label] = {"split": None, "alpha": alpha}
        start = time.perf_counter()
        self.add(
            f"hybrid-convex{suffix}",
            "hybrid",
            convex(bm25, run, alpha, depth=cfg.depth),
            {"fusion": "convex", "alpha": alpha, "normalisation": "min-max", "model": model},
            time.perf_counter() - start,
        )

    def _rerank(self, queries: dict[str, str]) -> None:
        """Rerank the best first-stage run's top documents with the configured cross-encoder."""
        cfg = self.config
        assert cfg.reranker is not None
        first = max(self.systems, key=lambda s: s.metrics[cfg.primary_metric])
        start = time.perf_counter()
        model = load_cross_encoder(cfg.reranker)
        run = rerank(
            self.runs[first.name],
            queries,
            self.dataset.corpus,
            model,
            depth=cfg.rerank_depth,
            batch_size=cfg.batch_size,
        )
        self.add(
            "rerank",
            "rerank",
            run,
            {"model": cfg.reranker, "first_stage": first.name, "depth": cfg.rerank_depth},
            time.perf_counter() - start,
        )


def _slices(bench: _Bench, metrics: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per-slice mean metrics for every system."""
    queries = {qid: bench.dataset.queries[qid] for qid in bench.qrels}
    labels = slice_labels(queries, bench.config.slice_fields)
    out = {}
    for name, run in bench.runs.items():
        rows = slice_table(per_query(bench.qrels, run, metrics), labels)
        out[name] = [asdict(row) for row in rows]
    return out


def run_bench(
    data: Path,
    workspace: Workspace,
    config: BenchConfig,
    *,
    force: bool = False,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> BenchResult:
    """Run the bench stage over a BEIR folder and write its artifacts into the workspace.

    Inputs: the BEIR folder, the workspace, the resolved bench config,
    ``force`` to re-run even when nothing changed, and the largest accepted
    JSONL record in bytes. Output: the `BenchResult`.
    Raises `InputError` on bad data (nothing is written then).
    """
    root = Path(data).expanduser().resolve()
    if not root.is_dir():
        raise InputError(root, 0, "-", "not a folder (expected a BEIR folder with corpus.jsonl)")
    out_dir = workspace.stage_dir(STAGE)
    inputs = {
        "data": str(root),
        "data_sha256": data_fingerprint(root),
        "config": config.model_dump(),
        "domainfit_version": __version__,
    }
    manifest = out_dir / "manifest.json"
    if not force and manifest.is_file() and (out_dir / "metrics.json").is_file():
        previous = json.loads(manifest.read_text())
        if previous.get("inputs") == inputs:
            result = BenchResult.from_json(json.loads((out_dir / "metrics.json").read_text()))
            result.up_to_date = True
            return result
    dataset, qrels, tune = _load(root, config, max_line_bytes)
    with workspace.lock():
        bench = _Bench(dataset, qrels, tune, config, workspace.cache_dir)
        leaks = check_qrels_leakage(dataset.qrels, dataset.queries) if len(dataset.qrels) > 1 else []
        if leaks:
            bench.notes.append(
                f"{len(leaks)} query families cross splits (e.g. {leaks[0].family!r} in {'/'.join(leaks[0].splits)}): "
                "scores may be optimistic; re-split with `domainfit split`"
            )
        bench.run_all()
        significance = compare_runs(
            qrels,
            bench.runs,
            baseline="bm25",
            metrics=config.metrics,
            test=config.significance_test,
        ).to_dict()
        result = BenchResult(
            split=config.split,
            n_queries=len(qrels),
            n_documents=len(dataset.corpus),
            systems=bench.systems,
            slices=_slices(bench, config.metrics),
            significance=significance,
            hybrid_tuning=bench.tuning,
            output_dir=str(out_dir),
            notes=bench.notes,
        )
        with staged_dir(out_dir) as tmp:
            for name, run in bench.runs.items():
                write_trec_run(tmp / "runs" / f"{name.replace(':', '__')}.trec", run, tag=name)
            atomic_write_json(
                tmp / "per_query.json",
                {name: per_query(qrels, run, config.metrics) for name, run in bench.runs.items()},
            )
            atomic_write_json(tmp / "metrics.json", result.to_json())
            atomic_write_json(tmp / "config.json", {"bench": config.model_dump(), "data": str(root)})
            atomic_write_text(tmp / "summary.md", markdown_summary(result, config.primary_metric))
            outputs = ["metrics.json", "per_query.json", "config.json", "summary.md"]
            outputs += [str(p.relative_to(tmp)) for p in sorted((tmp / "runs").glob("*.trec"))]
            workspace.write_manifest(tmp, STAGE, inputs, outputs)
    return result
