"""Parity of domainfit.evaluation.metrics (computed through ranx) with trec_eval.

trec_eval is reached through pytrec_eval. Random cases cover graded and binary
relevance, zero and negative grades, heavy score ties, empty and missing run
entries, runs longer than 100 and relevant documents that are never retrieved.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytrec_eval

from domainfit.core.errors import UsageError
from domainfit.evaluation.metrics import (
    DEFAULT_METRICS,
    check_metrics,
    evaluate,
    per_query,
    rank_documents,
    rank_scores,
)

N_CASES = 240
TOL = 1e-6

# our name -> trec_eval measure (mrr@10 is handled separately: recip_rank cut at 10)
TREC_NAMES = {
    "ndcg@10": "ndcg_cut_10",
    "recall@100": "recall_100",
    "map": "map",
    "map@100": "map_cut_100",
    "precision@10": "P_10",
    "ndcg": "ndcg",
    "mrr": "recip_rank",
}
OUR_METRICS = [*TREC_NAMES, "mrr@10"]


def _doc_id(rng: np.random.Generator, j: int) -> str:
    # ids whose string order differs from their numeric order ("d9" > "d10")
    return f"d{j}" if rng.random() < 0.8 else f"D{j:03d}"


def _judge(rng: np.random.Generator, docs: list[str], graded: bool, stats: dict) -> dict:
    n_judged = int(rng.integers(1, min(len(docs), 25) + 1))
    judged = rng.choice(len(docs), size=n_judged, replace=False)
    grades = rng.integers(-1, 4, size=n_judged) if graded else rng.integers(0, 2, size=n_judged)
    q_qrels = {docs[i]: int(g) for i, g in zip(judged, grades, strict=True)}
    if rng.random() < 0.3:  # relevant documents no run ever retrieves
        for u in range(int(rng.integers(1, 4))):
            q_qrels[f"unseen{u}"] = int(rng.integers(1, 4)) if graded else 1
        stats["unretrieved"] += 1
    if rng.random() < 0.1:  # judged but nothing relevant: not evaluated
        q_qrels = {d: 0 for d in q_qrels}
    return q_qrels


def _scores(rng: np.random.Generator, depth: int) -> np.ndarray:
    tie_mode = rng.random()
    if tie_mode < 0.4:
        return np.round(rng.random(depth), 1)  # many ties
    if tie_mode < 0.5:
        return np.full(depth, 0.5)  # everything tied
    if tie_mode < 0.6:
        return rng.integers(-3, 3, size=depth).astype(float)
    return rng.normal(size=depth)


def _make_case(seed: int) -> tuple[dict, dict, dict]:
    rng = np.random.default_rng(seed)
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    stats = {"ties": 0, "empty": 0, "missing": 0, "long": 0, "unretrieved": 0, "graded": 0}
    graded = bool(rng.random() < 0.5)
    stats["graded"] = int(graded)
    for qi in range(int(rng.integers(1, 7))):
        qid = f"q{qi}"
        pool = int(rng.integers(3, 260))
        docs = list(dict.fromkeys(_doc_id(rng, j) for j in range(pool)))
        qrels[qid] = _judge(rng, docs, graded, stats)
        kind = rng.random()
        if kind < 0.08:  # no run entry at all
            stats["missing"] += 1
            continue
        if kind < 0.16:  # an empty run entry
            run[qid] = {}
            stats["empty"] += 1
            continue
        depth = int(rng.integers(1, len(docs) + 1))
        retrieved = rng.choice(len(docs), size=depth, replace=False)
        scores = _scores(rng, depth)
        run[qid] = {docs[i]: float(s) for i, s in zip(retrieved, scores, strict=True)}
        stats["ties"] += int(len(set(scores.tolist())) < depth)
        stats["long"] += int(depth > 100)
    if rng.random() < 0.3:  # a run query the qrels do not know
        run["stray"] = {"d1": 1.0, "d2": 0.5}
    return qrels, run, stats


def _trec_eval(qrels: dict, run: dict) -> dict[str, dict[str, float]]:
    """Reference scores, keyed by our metric names, for the evaluated queries."""
    measures = set(TREC_NAMES.values())
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures)
    raw = evaluator.evaluate(run)
    evaluated = [q for q, docs in qrels.items() if any(g > 0 for g in docs.values())]
    out: dict[str, dict[str, float]] = {m: {} for m in OUR_METRICS}
    for qid in evaluated:
        res = raw.get(qid)  # pytrec_eval leaves out queries absent from the run
        for ours, theirs in TREC_NAMES.items():
            out[ours][qid] = float(res[theirs]) if res is not None else 0.0
        # MRR@10: trec_eval's reciprocal rank when the first hit is in the top 10
        rr = float(res["recip_rank"]) if res is not None else 0.0
        out["mrr@10"][qid] = rr if rr >= 1 / 10 - 1e-12 else 0.0
    return out


def test_random_cases_match_trec_eval() -> None:
    totals = {"ties": 0, "empty": 0, "missing": 0, "long": 0, "unretrieved": 0, "graded": 0}
    compared = 0
    for seed in range(N_CASES):
        qrels, run, stats = _make_case(seed)
        for key in totals:
            totals[key] += stats[key]
        ref = _trec_eval(qrels, run)
        ours = per_query(qrels, run, OUR_METRICS)
        for metric in OUR_METRICS:
            assert set(ours[metric]) == set(ref[metric]), (seed, metric)
            for qid, expected in ref[metric].items():
                got = ours[metric][qid]
                assert abs(got - expected) <= TOL, (seed, metric, qid, got, expected)
                compared += 1
        if ref["map"]:
            means = evaluate(qrels, run, OUR_METRICS)
            for metric in OUR_METRICS:
                expected = sum(ref[metric].values()) / len(ref[metric])
                assert abs(means[metric] - expected) <= TOL, (seed, metric)
    # the generator really exercised the hard cases
    assert totals["ties"] >= 100
    assert totals["empty"] >= 20
    assert totals["missing"] >= 20
    assert totals["long"] >= 50
    assert totals["unretrieved"] >= 50
    assert 60 <= totals["graded"] <= N_CASES - 60
    assert compared > 5000


def test_hand_computed_case() -> None:
    qrels = {
        "q1": {"d1": 3, "d2": 1, "d9": 2, "d4": 0},
        "q2": {"x": 0},  # nothing relevant: not evaluated
        "q3": {"a": 1},  # absent from the run: scores 0
    }
    # d2 and d3 tie: trec_eval puts d3 first (doc id descending)
    run = {"q1": {"d1": 0.5, "d2": 0.9, "d3": 0.9, "d4": 0.1}, "q2": {"x": 1.0}, "q9": {"a": 1.0}}
    # ranking of q1: d3 (0), d2 (1), d1 (3), d4 (0); d9 (2) never retrieved
    dcg = 1 / math.log2(3) + 3 / math.log2(4)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    expected_q1 = {
        "ndcg@10": dcg / idcg,
        "recall@100": 2 / 3,
        "mrr@10": 1 / 2,
        "map": (1 / 2 + 2 / 3) / 3,
        "map@100": (1 / 2 + 2 / 3) / 3,
        "precision@10": 2 / 10,
        "mrr@1": 0.0,
        "map@2": (1 / 2) / 3,
        "ndcg@1": 0.0,
    }
    scores = per_query(qrels, run, list(expected_q1))
    for metric, value in expected_q1.items():
        assert scores[metric] == {"q1": pytest.approx(value, abs=1e-12), "q3": 0.0}, metric
    means = evaluate(qrels, run, ["mrr@10", "recall@100"])
    assert means == {"mrr@10": pytest.approx(0.25), "recall@100": pytest.approx(1 / 3)}


def test_tie_order_is_doc_id_descending() -> None:
    ranked = rank_documents({"a": 1.0, "c": 1.0, "b": 1.0, "9": 2.0, "10": 2.0, "z": 0.0})
    assert [d for d, _ in ranked] == ["9", "10", "c", "b", "a", "z"]
    assert rank_scores({"a": 1.0, "b": 1.0}) == {"b": 2.0, "a": 1.0}
    # same rule as pytrec_eval: with all scores tied, the relevant "a" comes last
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 0.0, "b": 0.0, "c": 0.0}}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)
    assert ref["q"]["recip_rank"] == pytest.approx(1 / 3)
    assert per_query(qrels, run, ["mrr@10"])["mrr@10"]["q"] == pytest.approx(1 / 3)
    # non-ASCII ids: code point order, which is trec_eval's byte order on UTF-8
    qrels = {"q": {"z": 1}}
    run = {"q": {"Z": 1.0, "z": 1.0, "é": 1.0}}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)
    assert ref["q"]["recip_rank"] == pytest.approx(1 / 2)
    assert per_query(qrels, run, ["mrr@10"])["mrr@10"]["q"] == pytest.approx(1 / 2)


def test_empty_inputs() -> None:
    qrels = {"q": {"a": 1}, "r": {"b": 2}}
    assert per_query(qrels, {}, ["ndcg@10"]) == {"ndcg@10": {"q": 0.0, "r": 0.0}}
    assert per_query(qrels, {"q": {}, "r": {}}, ["map"]) == {"map": {"q": 0.0, "r": 0.0}}
    assert per_query({"q": {"a": 0}}, {"q": {"a": 1.0}}, ["map"]) == {"map": {}}
    with pytest.raises(ValueError):
        evaluate({"q": {"a": 0}}, {"q": {"a": 1.0}}, ["map"])


def test_nan_score_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        per_query({"q": {"a": 1}}, {"q": {"a": float("nan")}}, ["map"])


def test_metric_names() -> None:
    assert check_metrics(["map", "ndcg@10", "map"]) == ["map", "ndcg@10"]
    assert check_metrics(DEFAULT_METRICS) == list(DEFAULT_METRICS)
    for bad in ["ndcg@0", "recall", "precision", "NDCG@10", "bpref", "map@", "mrr@-1", ""]:
        with pytest.raises(UsageError):
            check_metrics([bad])
