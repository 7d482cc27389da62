"""Domain-specific similarity systems for ``bench``: facets, time decay, category hierarchy.

When ``[bench.similarity.*]`` switches them on, `add_similarity_systems` runs,
next to each plain ``dense`` system, ``dense-facets``, ``dense-time`` and
``dense-hierarchy`` (same bi-encoder), tunes their weights on the tuning split,
and records a verdict per system: did it beat plain dense on the evaluation split
(paired test), overall and per query level (`summary_line` renders it). A configured field that no document
has is bad input (`InputError`), so a typo never silently measures nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.core.errors import InputError
from domainfit.core.types import Qrels, Query, Run
from domainfit.data.jsonl import iter_jsonl
from domainfit.evaluation.metrics import per_query
from domainfit.evaluation.significance import compare_runs
from domainfit.retrieval.config import SimilarityConfig
from domainfit.retrieval.facets import FacetRetriever, field_coverage, fuse_facets, sweep_facet_weights
from domainfit.retrieval.hierarchy import (
    LEVELS,
    CategoryTree,
    HierarchyRetriever,
    fuse_hierarchy,
    levels_from_qrels,
    route_levels,
    tune_hierarchy,
)
from domainfit.retrieval.timedecay import (
    RecordError,
    apply_time_decay,
    document_dates,
    parse_date,
    query_reference_times,
)

if TYPE_CHECKING:
    from domainfit.evaluation.benchmark import Benchmark
    from domainfit.retrieval.dense import DenseRetriever

KIND = "similarity"


def _corpus_path(runner: Benchmark) -> Path | str:
    """Return the corpus file named in error messages."""
    root = runner.dataset.root
    return root / "corpus.jsonl" if root is not None else "corpus.jsonl"


def _record_error(path: Path | str, exc: RecordError) -> InputError:
    """Return the one-line error for a bad value of one record, with the record's line in its JSONL file."""
    line = 0
    if isinstance(path, Path) and path.is_file():
        line = next((n for n, record in iter_jsonl(path) if record.get("_id") == exc.record_id), 0)
    return InputError(path, line, exc.field, f"{exc.record_id!r}: {exc.reason}")


def _facets(runner: Benchmark, dense: DenseRetriever, name: str, queries: Mapping[str, str]) -> Run:
    """Run the facet system; record its weights (swept on the tuning split when asked)."""
    cfg, sim = runner.config, runner.config.similarity.facets
    coverage = field_coverage(runner.dataset.corpus, sim.fields)
    missing = [f for f, n in coverage.items() if n == 0]
    if missing:
        raise InputError(
            _corpus_path(runner), 0, "bench.similarity.facets.fields", f"no document has field(s) {missing}"
        )
    retriever = FacetRetriever(dense, sim.fields)
    retriever.index(runner.dataset.corpus)
    tuning: dict[str, Any] = {"coverage": coverage}
    if isinstance(sim.weights, list):
        weights = dict(zip(sim.fields, sim.weights, strict=True))
        tuning["source"] = "config"
    elif runner.tune:
        tune_queries = {qid: runner.dataset.queries[qid].text for qid in runner.tune}
        sweep = sweep_facet_weights(
            retriever.search(tune_queries, cfg.depth), runner.tune, runner.score, cfg.primary_metric, sim.grid
        )
        weights = sweep.weights
        best = sorted(sweep.scores, key=lambda item: -item["score"])[:5]
        tuning.update(source=f"sweep on {cfg.tune_split}", tried=len(sweep.scores), top=best)
    else:
        weights = {f: 1 / len(sim.fields) for f in sim.fields}
        tuning["source"] = "equal (no tuning split)"
        runner.notes.append(f"{name}: no '{cfg.tune_split}' split to sweep facet weights: used equal weights")
    tuning["weights"] = weights
    runner.tuning[name] = tuning
    return fuse_facets(retriever.search(queries, cfg.depth), weights, depth=cfg.depth)


def _reference(runner: Benchmark, dates: Mapping[str, dt.datetime | None]) -> dt.datetime:
    """Return the configured reference time, else the newest document date."""
    sim = runner.config.similarity.time
    if sim.reference_date:
        parsed = parse_date(sim.reference_date)
        assert parsed is not None
        return parsed
    return max(d for d in dates.values() if d is not None)


def _time(runner: Benchmark, name: str, dense_run: Run) -> Run:
    """Decay the plain dense run with document age."""
    sim = runner.config.similarity.time
    field_name = "bench.similarity.time.date_field"
    try:
        dates = document_dates(runner.dataset.corpus, sim.date_field)
    except RecordError as exc:
        raise _record_error(_corpus_path(runner), exc) from None
    dated = sum(1 for d in dates.values() if d is not None)
    if not dated:
        raise InputError(_corpus_path(runner), 0, field_name, f"no document has a {sim.date_field!r} date")
    default = _reference(runner, dates)
    judged = {qid: runner.dataset.queries[qid] for qid in dense_run if qid in runner.dataset.queries}
    try:
        references = query_reference_times(judged, default, sim.query_date_field)
    except RecordError as exc:
        root = runner.dataset.root
        raise _record_error(root / "queries.jsonl" if root is not None else "queries.jsonl", exc) from None
    runner.tuning[name] = {
        **sim.model_dump(exclude={"enabled"}),
        "reference": default.date().isoformat(),
        "dated_documents": dated,
        "undated_documents": len(dates) - dated,
    }
    if dated < len(dates):
        runner.notes.append(f"{name}: {len(dates) - dated} documents have no date (policy: {sim.missing})")
    return apply_time_decay(
        dense_run,
        dates,
        references,
        sim.half_life_days,
        mode=sim.mode,
        weight=sim.weight,
        missing=sim.missing,
    )


def _hierarchy(
    runner: Benchmark, dense: DenseRetriever, name: str, queries: Mapping[str, str], dense_run: Run
) -> tuple[Run, CategoryTree]:
    """Fuse the dense run with the category run, one category weight per query level."""
    cfg, sim = runner.config, runner.config.similarity.hierarchy
    retriever = HierarchyRetriever(dense, sim.path_field, sim.separator)
    try:
        tree = retriever.index(runner.dataset.corpus)
    except ValueError as exc:
        raise InputError(_corpus_path(runner), 0, "bench.similarity.hierarchy.path_field", str(exc)) from None
    if not tree.doc_paths:
        raise InputError(
            _corpus_path(runner), 0, "bench.similarity.hierarchy.path_field", f"no document has a {sim.path_field!r}"
        )
    all_queries = runner.dataset.queries
    tuning: dict[str, Any] = {"nodes": len(tree.nodes), "documents_with_path": len(tree.doc_paths)}
    if runner.tune:
        tune_q = {qid: all_queries[qid].text for qid in runner.tune}
        tune_item = dense.search(tune_q, cfg.depth)
        tune_levels = route_levels(all_queries, tune_item, retriever.best_node_scores(tune_q), sim.level_field)
        tuned = tune_hierarchy(
            tune_item,
            retriever.search(tune_q, cfg.depth),
            tune_levels,
            runner.tune,
            runner.score,
            cfg.primary_metric,
            sim.grid,
        )
        weights = tuned.weights
        tuning.update(split=cfg.tune_split, dev_scores=tuned.scores, dev_queries=tuned.dev_queries)
    else:
        weights = dict.fromkeys(LEVELS, 0.5)
        runner.notes.append(f"{name}: no '{cfg.tune_split}' split to tune category weights: used 0.5")
    levels = route_levels(all_queries, dense_run, retriever.best_node_scores(queries), sim.level_field)
    truth = level_labels(all_queries, runner.qrels, tree, sim.level_field)
    tuning.update(
        weights=weights,
        routed={level: sum(1 for v in levels.values() if v == level) for level in LEVELS},
        routed_as_slice_label=sum(1 for qid, v in levels.items() if truth.get(qid) == v),
    )
    runner.tuning[name] = tuning
    return fuse_hierarchy(dense_run, retriever.search(queries, cfg.depth), levels, weights, cfg.depth), tree


def level_labels(queries: Mapping[str, Query], qrels: Qrels, tree: CategoryTree, level_field: str) -> dict[str, str]:
    """Return each judged query's level for slices: metadata coarse/fine when given, else inferred from qrels."""
    inferred = levels_from_qrels(qrels, tree)
    out: dict[str, str] = {}
    for qid in qrels:
        given = str(queries[qid].metadata.get(level_field, "")).strip().lower() if qid in queries else ""
        out[qid] = given if given in LEVELS else inferred[qid]
    return out


def verdict(delta: float, significant: bool) -> str:
    """Say in words whether a system beat the baseline (``helped`` only when better and significant)."""
    if delta > 0:
        return "helped" if significant else "did not clearly help (better, but not significant)"
    if delta < 0 and significant:
        return "did not help (significantly worse)"
    return "did not help"


def _per_level(
    qrels: Qrels, runs: Mapping[str, Run], labels: Mapping[str, str], metric: str
) -> dict[str, dict[str, Any]]:
    """Mean ``metric`` per level for each run: ``{level: {"n": count, run name: mean}}``."""
    scores = {name: per_query(qrels, run, [metric])[metric] for name, run in runs.items()}
    out: dict[str, dict[str, Any]] = {}
    for level in LEVELS:
        qids = [q for q in next(iter(scores.values())) if labels.get(q) == level]
        if qids:
            out[level] = {"n": len(qids), **{n: math.fsum(s[q] for q in qids) / len(qids) for n, s in scores.items()}}
    return out


def _verdicts(runner: Benchmark, baseline: str, systems: list[str], labels: Mapping[str, str]) -> None:
    """Compare each similarity system with plain dense and record the verdicts and notes."""
    cfg = runner.config
    metric = cfg.primary_metric
    runs = {baseline: runner.runs[baseline], **{s: runner.runs[s] for s in systems}}
    test = compare_runs(runner.qrels, runs, baseline=baseline, metrics=[metric], test=cfg.significance_test)
    per_level = _per_level(runner.qrels, runs, labels, metric) if labels else {}
    for system in systems:
        comp = test.comparison(system, metric)
        words = verdict(comp.delta, comp.significant)
        entry = {
            "system": system,
            "baseline": baseline,
            "metric": metric,
            "split": cfg.split,
            "score": comp.system_mean,
            "baseline_score": comp.baseline_mean,
            "delta": comp.delta,
            "p_value": comp.p_value,
            "test": test.test_description,
            "helped": words == "helped",
            "verdict": words,
            "per_level": {
                level: {"n": row["n"], "score": row[system], "baseline_score": row[baseline]}
                for level, row in per_level.items()
            },
        }
        runner.similarity[system] = entry


def summary_line(entry: Mapping[str, Any]) -> str:
    """One sentence for a verdict entry, e.g. ``dense-facets vs dense on test (ndcg@10): ... helped``."""
    line = (
        f"{entry['system']} vs {entry['baseline']} on {entry['split']} ({entry['metric']}): "
        f"{entry['score']:.4f} vs {entry['baseline_score']:.4f} ({entry['delta']:+.4f}, p = {entry['p_value']:.3g}): "
        f"{entry['verdict']}"
    )
    levels = entry.get("per_level") or {}
    if levels:
        parts = [f"{lv} {r['score']:.3f} vs {r['baseline_score']:.3f} (n={r['n']})" for lv, r in levels.items()]
        line += "; per level: " + ", ".join(parts)
    return line


def add_similarity_systems(
    runner: Benchmark, dense: DenseRetriever, suffix: str, queries: Mapping[str, str], dense_run: Run
) -> None:
    """Add the enabled similarity systems next to ``dense{suffix}`` and record their verdicts.

    Inputs: the runner (dataset, qrels, tuning qrels, config; receives the runs,
    tuning, notes, verdicts and the ``level`` slice labels), the indexed dense
    retriever, the system-name suffix, the evaluation queries and the dense run.
    Raises `InputError` when a configured field is in no document.
    """
    sim: SimilarityConfig = runner.config.similarity
    added: list[str] = []
    labels: dict[str, str] = {}
    base_config = dense.get_config_dict()
    if sim.facets.enabled:
        name, start = f"dense-facets{suffix}", time.perf_counter()
        run = _facets(runner, dense, name, queries)
        runner.add(name, KIND, run, {**base_config, **sim.facets.model_dump()}, time.perf_counter() - start)
        added.append(name)
    if sim.time.enabled:
        name, start = f"dense-time{suffix}", time.perf_counter()
        run = _time(runner, name, dense_run)
        runner.add(name, KIND, run, {**base_config, **sim.time.model_dump()}, time.perf_counter() - start)
        added.append(name)
    if sim.hierarchy.enabled:
        name, start = f"dense-hierarchy{suffix}", time.perf_counter()
        run, tree = _hierarchy(runner, dense, name, queries, dense_run)
        runner.add(name, KIND, run, {**base_config, **sim.hierarchy.model_dump()}, time.perf_counter() - start)
        added.append(name)
        labels = level_labels(runner.dataset.queries, runner.qrels, tree, sim.hierarchy.level_field)
        for qid, level in labels.items():
            runner.extra_labels.setdefault(qid, {})["level"] = level
    if not labels:
        field_name = sim.hierarchy.level_field
        labels = {
            qid: str(runner.dataset.queries[qid].metadata.get(field_name, "")).strip().lower()
            for qid in runner.qrels
            if qid in runner.dataset.queries
        }
        labels = {qid: v for qid, v in labels.items() if v in LEVELS}
    if added:
        _verdicts(runner, f"dense{suffix}", added, labels)
