"""Benchmark: domain-specific similarity (facets, time decay, hierarchy) vs plain dense.

Builds the synthetic structured catalogue (``domainfit.data.structured_demo``:
products with title / body / attributes / date / category path, dated warranty
revisions; title, attribute, latest-version and coarse category queries, dev and
test splits), runs ``domainfit bench`` on it with the three similarity systems
switched on, and adds variants the stage does not run:

* ``dense-concat``: plain dense over title + body + attributes in one text (is a
  facet fusion better than just concatenating the fields?);
* time decay: multiplicative and additive, several half-lives; the variant
  reported as chosen is the best on *dev*, its test score is the number that counts;
* ``dense-hierarchy (auto level)``: the queries' ``level`` metadata removed, so the
  level is inferred from scores at search time.

Each system's NDCG@10 is reported on test overall and per query kind (where it
applies) and per level. Results go to ``bench/results/similarity.json`` and a
table on stdout.

Usage: python bench/bench_similarity.py [--model all-MiniLM-L6-v2] [--seed 13]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from domainfit.config import BenchConfig
from domainfit.core.models import DEFAULT_MODEL
from domainfit.core.progress import set_quiet
from domainfit.core.types import Document, Query, Run
from domainfit.core.workspace import Workspace
from domainfit.data.beir import BeirDataset, write_beir
from domainfit.data.structured_demo import build_structured_demo
from domainfit.evaluation.metrics import evaluate, per_query
from domainfit.retrieval.dense import DenseRetriever
from domainfit.retrieval.facets import field_text
from domainfit.retrieval.hierarchy import HierarchyRetriever, fuse_hierarchy, route_levels, tune_hierarchy
from domainfit.retrieval.timedecay import apply_time_decay, document_dates
from domainfit.stages.bench import run_bench

METRIC = "ndcg@10"
KINDS = ("title", "attribute", "latest", "coarse")
HALF_LIVES = (30.0, 90.0, 180.0, 365.0, 730.0)
ADDITIVE_WEIGHTS = (0.02, 0.05, 0.1)


def by_kind(dataset: BeirDataset, split: str, run: Run) -> dict[str, float]:
    """NDCG@10 overall and per query kind and level on one split."""
    qrels = dataset.qrels[split]
    scores = per_query(qrels, run, [METRIC])[METRIC]
    out = {"all": sum(scores.values()) / len(scores)}
    for field, values in (("kind", KINDS), ("level", ("coarse", "fine"))):
        for value in values:
            qids = [q for q in scores if dataset.queries[q].metadata.get(field) == value]
            if qids:
                out[f"{field}:{value}"] = sum(scores[q] for q in qids) / len(qids)
    return out


def time_variants(dataset: BeirDataset, dense_runs: dict[str, Run]) -> dict:
    """Decay the dense runs with every variant; pick the best on dev; return all scores."""
    dates = document_dates(dataset.corpus, "date")
    reference = max(d for d in dates.values() if d is not None)
    variants = []
    for half_life in HALF_LIVES:
        settings = [("multiplicative", 0.0)] + [("additive", w) for w in ADDITIVE_WEIGHTS]
        for mode, weight in settings:
            row = {"mode": mode, "half_life_days": half_life, "weight": weight if mode == "additive" else None}
            for split, run in dense_runs.items():
                decayed = apply_time_decay(run, dates, reference, half_life, mode=mode, weight=weight)  # type: ignore[arg-type]
                row[split] = by_kind(dataset, split, decayed)
            variants.append(row)
    best = max(variants, key=lambda r: r["dev"]["all"])
    return {"reference": reference.date().isoformat(), "chosen_on_dev": best, "variants": variants}


def concat_run(model: DenseRetriever, dataset: BeirDataset, split: str) -> Run:
    """Plain dense over title + body + attributes concatenated."""
    corpus = {
        did: Document(id=did, title=d.title, text=d.text + "\n" + field_text(d, "attributes"))
        for did, d in dataset.corpus.items()
    }
    model.index(corpus)
    queries = {qid: dataset.queries[qid].text for qid in dataset.qrels[split]}
    return model.search(queries, 100)


def hierarchy_auto(dense: DenseRetriever, dataset: BeirDataset, dense_runs: dict[str, Run]) -> dict:
    """Hierarchy fusion with the query level inferred at search time (level metadata removed)."""
    stripped = {
        qid: Query(id=qid, text=q.text, metadata={k: v for k, v in q.metadata.items() if k != "level"})
        for qid, q in dataset.queries.items()
    }
    retriever = HierarchyRetriever(dense, "category", ">")
    retriever.index(dataset.corpus)
    out: dict = {}
    runs: dict[str, tuple[Run, Run, dict]] = {}
    for split in ("dev", "test"):
        queries = {qid: dataset.queries[qid].text for qid in dataset.qrels[split]}
        levels = route_levels(stripped, dense_runs[split], retriever.best_node_scores(queries))
        truth = {q: dataset.queries[q].metadata["level"] for q in queries}
        out[f"routing_accuracy_{split}"] = sum(levels[q] == truth[q] for q in queries) / len(queries)
        runs[split] = (dense_runs[split], retriever.search(queries, 100), levels)

    def score(qrels, run):
        return evaluate(qrels, run, [METRIC])[METRIC]

    tuned = tune_hierarchy(*runs["dev"], dataset.qrels["dev"], score)
    out["weights"] = tuned.weights
    out["test"] = by_kind(dataset, "test", fuse_hierarchy(*runs["test"], tuned.weights, 100))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "similarity.json")
    args = parser.parse_args()
    set_quiet(True)
    dataset = build_structured_demo(seed=args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_beir(dataset, Path(tmp) / "catalogue")
        config = BenchConfig.model_validate(
            {
                "models": [args.model],
                "similarity": {
                    "facets": {"enabled": True, "fields": ["title", "text", "attributes"], "weights": "sweep"},
                    "time": {"enabled": True, "date_field": "date", "half_life_days": 365},
                    "hierarchy": {"enabled": True, "path_field": "category"},
                },
            }
        )
        workspace = Workspace(Path(tmp) / "ws")
        result = run_bench(folder, workspace, config)
        bench_seconds = time.perf_counter() - started
        runs_dir = Path(result.output_dir) / "runs"
        from domainfit.evaluation.trec import read_trec_run

        systems = {}
        for system in result.systems:
            run = read_trec_run(runs_dir / f"{system.name}.trec")
            systems[system.name] = by_kind(dataset, "test", run)
        dense = DenseRetriever(args.model, cache_dir=workspace.cache_dir / "embeddings", max_seq_length=256)
        dense.index(dataset.corpus)
        dense_runs = {
            split: dense.search({qid: dataset.queries[qid].text for qid in dataset.qrels[split]}, 100)
            for split in ("dev", "test")
        }
        time_results = time_variants(dataset, dense_runs)
        auto = hierarchy_auto(dense, dataset, dense_runs)
        concat = by_kind(dataset, "test", concat_run(dense, dataset, "test"))
    counts = {
        split: {k: sum(1 for q in qrels if dataset.queries[q].metadata["kind"] == k) for k in KINDS}
        for split, qrels in dataset.qrels.items()
    }
    report = {
        "format_version": 1,
        "model": args.model,
        "metric": METRIC,
        "split": "test",
        "dataset": {"documents": len(dataset.corpus), "queries": counts, "seed": args.seed},
        "systems_test": systems,
        "dense_concat_test": concat,
        "verdicts": result.similarity,
        "tuning": {k: v for k, v in result.hybrid_tuning.items() if k.startswith("dense-")},
        "time_decay": time_results,
        "hierarchy_auto_level": auto,
        "bench_seconds": round(bench_seconds, 1),
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    columns = ["all", *(f"kind:{k}" for k in KINDS), "level:coarse", "level:fine"]
    shown = [c.replace("kind:", "").replace("level:", "lvl-") for c in columns]
    print(f"{'system (test ' + METRIC + ')':40}" + "".join(f"{c:>11}" for c in shown))
    rows = {**systems, "dense-concat": concat, "dense-hierarchy (auto level)": auto["test"]}
    best_time = time_results["chosen_on_dev"]
    label = f"dense-time {best_time['mode']} h={best_time['half_life_days']:g}"
    label += f" w={best_time['weight']}" if best_time["weight"] else ""
    rows[label + " (dev)"] = best_time["test"]
    for name, scores in rows.items():
        print(f"{name:40}" + "".join(f"{scores.get(c, float('nan')):11.4f}" for c in columns))
    for entry in result.similarity.values():
        print(f"- {entry['system']}: {entry['verdict']} ({entry['delta']:+.4f}, p = {entry['p_value']:.3g})")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
