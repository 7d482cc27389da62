"""Benchmark: `domainfit run` with its defaults against the plain sentence-transformers script, per corpus.

For each corpus (a BEIR folder with train/dev/test qrels), in one run:

(a) ``domainfit run DATA`` with default settings (no config: the recipe search
    chooses on dev) and, with ``--budget``, a time budget, into a fresh
    workspace, in a child process;
(b) ``bench/plain_st.py DATA`` (MNRL on the labelled pairs with one BM25
    negative each, 256 tokens, 1 epoch, learning rate 2e-5) on the same splits,
    in a child process. A finished (b) in ``--work`` is reused, so a later run
with other domainfit settings compares against the same reference.

Reported per corpus: test NDCG@10 of the base model and of each fine-tuned
model, each lift with its paired p-value, domainfit's fine-tuned model against
the script's (paired t-test over the test queries), the ratio of lifts
(target >= 1.0), what domainfit's decision says to deploy, wall time and peak
RSS of each child (``wait4``'s ``ru_maxrss``, KiB on Linux), and domainfit's
stage timings. Results go to ``bench/results/recipe.json``.

Usage::

    python bench/bench_recipe.py --corpus demo --corpus longdocs=/path/to/beir [--work DIR] [--skip-plain]

``demo`` is the bundled demo corpus (run with no config, i.e. defaults, unlike
``make demo``). The corpora of ``scripts/build_bench_corpora.py`` are the others.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def child(argv: list[str], log: Path) -> tuple[int, float, float]:
    """Run ``argv`` with stdout/stderr to ``log``; return (exit code, seconds, peak RSS in MiB)."""
    start = time.perf_counter()
    with log.open("w") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
        _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - start, usage.ru_maxrss / 1024


def paired(a: dict[str, float], b: dict[str, float]) -> dict[str, Any]:
    """Paired t-test of per-query scores ``a`` against ``b`` over their common queries."""
    from scipy.stats import ttest_rel

    qids = sorted(set(a) & set(b))
    diffs = [a[q] - b[q] for q in qids]
    p = float(ttest_rel([a[q] for q in qids], [b[q] for q in qids]).pvalue) if any(diffs) else 1.0
    return {"queries": len(qids), "mean_difference": sum(diffs) / len(qids) if qids else 0.0, "p_value": p}


def domainfit_numbers(workspace: Path, data: Path) -> dict[str, Any]:
    """Read eval, decision, recipe and stage timings from a finished workspace."""
    from domainfit.data.beir import load_beir
    from domainfit.evaluation.metrics import per_query
    from domainfit.evaluation.trec import read_trec_run

    metrics = json.loads((workspace / "eval" / "metrics.json").read_text())
    scores = {s["name"]: s["metrics"]["ndcg@10"] for s in metrics["systems"]}
    comparison = next(c for c in metrics["significance"]["dense"]["comparisons"] if c["metric"] == "ndcg@10")
    qrels = load_beir(data).qrels[metrics["split"]]
    tuned = per_query(qrels, read_trec_run(workspace / "eval" / "runs" / "dense__fine-tuned.trec"), ["ndcg@10"])
    decision = json.loads((workspace / "decide" / "decision-after.json").read_text())
    recipe_file = workspace / "recipe" / "search.json"
    recipe = json.loads(recipe_file.read_text()) if recipe_file.is_file() else None
    return {
        "base_ndcg@10": scores["dense:base"],
        "tuned_ndcg@10": scores["dense:fine-tuned"],
        "lift": metrics["lift"]["dense"]["ndcg@10"],
        "p_value": comparison["p_value"],
        "systems": scores,
        "decision": decision["recommendation"],
        "deploy": decision["numbers"].get("deploy"),
        "recipe": None
        if recipe is None
        else {
            "winner": recipe["winner"]["name"],
            "settings": recipe["settings"],
            "trials": [(t["recipe"]["name"], t["state"], round(t["seconds"])) for t in recipe["search"]["trials"]]
            if recipe["search"]
            else [],
        },
        "per_query": tuned["ndcg@10"],
    }


def run_plain(name: str, data: Path, work: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Run (b) once per work folder: its numbers and per-query scores (reused when it already finished there)."""
    plain, record = work / f"{name}-plain", work / f"{name}-plain.json"
    if record.is_file() and (plain / "per_query.json").is_file():
        print(f"reusing the finished plain run in {plain}", flush=True)
        return json.loads(record.read_text()), json.loads((plain / "per_query.json").read_text())
    code, seconds, rss = child(
        [sys.executable, str(ROOT / "bench" / "plain_st.py"), str(data), "--out", str(plain)],
        work / f"{name}-plain.log",
    )
    out: dict[str, Any] = {"exit_code": code, "seconds": round(seconds, 1), "peak_rss_mib": round(rss)}
    if code != 0:
        return out, None
    result = json.loads((plain / "result.json").read_text())
    out.update({k: result[k] for k in ("base_ndcg@10", "tuned_ndcg@10", "lift", "p_value", "steps")})
    record.write_text(json.dumps(out, indent=2) + "\n")
    return out, json.loads((plain / "per_query.json").read_text())


def bench_corpus(
    name: str,
    data: Path,
    work: Path,
    skip_plain: bool,
    config: Path | None = None,
    plain_only: bool = False,
    budget: str | None = None,
) -> dict[str, Any]:
    """Run (b), the reference, then (a) on one corpus, and compare them."""
    out: dict[str, Any] = {"corpus": name, "data": data.name}  # the folder's name: results name no machine path
    per: dict[str, Any] | None = None
    if not skip_plain:
        out["plain"], per = run_plain(name, data, work)
        print(json.dumps(out, indent=2), flush=True)
    if plain_only:
        return out
    ws = work / f"{name}-domainfit"
    argv = [str(Path(sys.executable).with_name("domainfit")), "run", str(data), "--workspace", str(ws), "--quiet"]
    argv += ["--config", str(config)] if config else []
    argv += ["--budget", budget] if budget else []
    code, seconds, rss = child(argv, work / f"{name}-domainfit.log")
    out["domainfit"] = {"exit_code": code, "seconds": round(seconds, 1), "peak_rss_mib": round(rss)}
    if budget:
        from domainfit.budget.duration import parse_duration

        out["domainfit"]["budget_seconds"] = parse_duration(budget)
        out["domainfit"]["share_of_budget"] = round(seconds / parse_duration(budget), 3)
    if code == 0:
        out["domainfit"].update(domainfit_numbers(ws, data))
        timings = ws / "plan" / "timings.json"
        if timings.is_file():
            out["domainfit"]["stages"] = json.loads(timings.read_text())["stages"]
        if per is not None:
            out["domainfit_vs_plain"] = paired(out["domainfit"]["per_query"], per["tuned"])
            plain_lift = out["plain"]["lift"]
            out["lift_ratio"] = out["domainfit"]["lift"] / plain_lift if plain_lift > 0 else None
    out["domainfit"].pop("per_query", None)
    return out


def main() -> None:
    """Run every corpus given and save the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="append", required=True, help="demo, or NAME=PATH of a BEIR folder")
    parser.add_argument("--work", type=Path, help="keep workspaces and logs here (default: a temporary folder)")
    parser.add_argument("--skip-plain", action="store_true", help="run domainfit only")
    parser.add_argument("--plain-only", action="store_true", help="run the plain script only (reused by a later run)")
    parser.add_argument("--budget", help="pass --budget to domainfit run (e.g. 30m) and report the share used")
    parser.add_argument("--config", type=Path, help="a domainfit.toml for run (default: none, the defaults)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "recipe.json")
    args = parser.parse_args()
    from domainfit.data.demo import demo_path

    work = args.work or Path(tempfile.mkdtemp(prefix="domainfit-bench-recipe-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for spec in args.corpus:
        name, _, path = spec.partition("=")
        data = Path(demo_path()) if name == "demo" and not path else Path(path)
        results.append(bench_corpus(name, data, work, args.skip_plain, args.config, args.plain_only, args.budget))
        print(json.dumps(results[-1], indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "corpora": results}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
