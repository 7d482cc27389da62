"""Threshold calibration: PR curve, F-beta optimum against brute force, pairs, and `domainfit calibrate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.compress.calibrate import build_pairs
from domainfit.compress.embed import EncodedCorpus, EncodedQueries
from domainfit.compress.threshold import (
    best_threshold,
    empty_result_rate,
    f_beta,
    pr_curve,
    precision_recall_at,
)

runner = CliRunner()


def scored_pairs(seed: int, n: int = 400):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.25
    scores = np.round(rng.normal(0.3, 0.15, n) + 0.2 * labels, 2)  # rounded: many ties
    return labels.astype(int), scores


def brute_force(labels, scores, beta):
    """Try every distinct score as the threshold; return (best F, highest threshold reaching it)."""
    best_f, best_t = -1.0, None
    for t in sorted(set(scores.tolist()), reverse=True):
        predicted = scores >= t
        tp = np.sum(predicted & (labels == 1))
        p = tp / predicted.sum()
        r = tp / labels.sum()
        f = 0.0 if p + r == 0 else (1 + beta**2) * p * r / (beta**2 * p + r)
        if f > best_f + 1e-12:
            best_f, best_t = f, t
    return best_f, best_t


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_f_beta_threshold_matches_brute_force(seed, beta):
    labels, scores = scored_pairs(seed)
    found = best_threshold(labels, scores, beta)
    expected_f, expected_t = brute_force(labels, scores, beta)
    assert found.f_beta == pytest.approx(expected_f, abs=1e-12)
    assert found.threshold == expected_t
    p, r = precision_recall_at(labels, scores, found.threshold)
    assert (found.precision, found.recall) == (pytest.approx(p), pytest.approx(r))
    assert found.n_positive == labels.sum() and found.n_negative == (labels == 0).sum()


def test_pr_curve_matches_sklearn():
    from sklearn.metrics import precision_recall_curve

    labels, scores = scored_pairs(7)
    curve = pr_curve(labels, scores)
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    reference = {float(t): (p, r) for p, r, t in zip(precision[:-1], recall[:-1], thresholds, strict=True)}
    assert np.all(np.diff(curve.thresholds) < 0)
    compared = 0
    for t, p, r in zip(curve.thresholds, curve.precision, curve.recall, strict=True):
        if float(t) in reference:
            compared += 1
            assert (p, r) == (pytest.approx(reference[float(t)][0]), pytest.approx(reference[float(t)][1]))
    assert compared >= len(reference) - 1


def test_f_beta_and_empty_rate_by_hand():
    assert f_beta(np.array([0.5]), np.array([1.0]), 1.0)[0] == pytest.approx(2 * 0.5 / 1.5)
    assert f_beta(np.array([0.5]), np.array([1.0]), 2.0)[0] == pytest.approx(5 * 0.5 / (4 * 0.5 + 1))
    assert f_beta(np.array([0.0]), np.array([0.0]), 1.0)[0] == 0.0
    assert empty_result_rate(np.array([0.2, 0.5, 0.7, 0.9]), 0.6) == 0.5
    with pytest.raises(ValueError, match="no positive"):
        best_threshold(np.zeros(3), np.ones(3))


def test_pairs_hold_positives_hard_and_random_negatives():
    rng = np.random.default_rng(0)
    corpus = EncodedCorpus([f"d{i}" for i in range(50)], rng.standard_normal((50, 8)).astype(np.float32))
    qrels = {"q1": {"d3": 1, "d7": 2, "d9": 0}, "q2": {"d0": 0}, "q3": {"d10": 1}}
    queries = EncodedQueries("dev", ["q1", "q2", "q3"], np.zeros((3, 8), np.float32), qrels)
    ranked = np.array([[3, 9, 12, 7, 15, 16], [1, 2, 3, 4, 5, 6], [10, 11, 12, 13, 14, 15]])
    pairs = build_pairs(queries, corpus, ranked, hard_negatives=3, random_negatives=5, seed=1)
    assert pairs.query_ids == ["q1", "q3"]  # q2 has no relevant document
    row = pairs.rows[0][pairs.valid()[0]].tolist()
    labels = pairs.labels[0][pairs.valid()[0]].tolist()
    assert row[:2] == [3, 7] and labels[:2] == [1, 1]
    assert row[2:5] == [9, 12, 15]  # top-ranked non-relevant (a grade-0 document counts as non-relevant)
    assert len(row) == 2 + 3 + 5 and len(set(row)) == len(row) and sum(labels) == 2
    assert pairs.n_pairs == 10 + 9


def test_calibrate_command_end_to_end(tmp_path, mini_beir, minilm):
    ws = tmp_path / "ws"
    args = ["calibrate", str(mini_beir), "-w", str(ws), "--quiet", "--json"]
    args += ["-C", "full/float32", "-C", "full/int8", "-C", "trunc-64/binary", "-C", "pca-384/int8"]
    args += ["-m", "sentence-transformers/all-MiniLM-L6-v2", "-m", "all-MiniLM-L6-v2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["split"], data["eval_split"], data["beta"]) == ("dev", "test", 1.0)
    assert any("pca-384" in note for note in data["notes"])  # 30 documents: cannot fit PCA, said so
    first, second = data["models"]
    names = [c["configuration"] for c in first["configurations"]]
    assert names == ["trunc-384/float32", "trunc-384/int8", "trunc-64/binary"]
    assert first["n_queries"] == 4 and first["n_pairs"] == 4 * (1 + 10 + 10)
    reference = first["configurations"][0]
    assert reference["delta_vs_reference"] == 0.0 and reference["n_positive"] == 4
    for c in first["configurations"]:
        assert c["delta_vs_reference"] == pytest.approx(c["threshold"] - reference["threshold"], abs=1e-6)
        assert 0 <= c["precision"] <= 1 and 0 < c["recall"] <= 1 and 0 <= c["empty_rate"] <= 1
        assert c["held_out"]["split"] == "test" and c["held_out"]["n_queries"] == 8
        assert c["curve"]["threshold"][0] >= c["threshold"] >= c["curve"]["threshold"][-1]
    # the same weights under a second name: thresholds do not move between the two models
    assert [c["delta_vs_first_model"] for c in second["configurations"]] == [0.0, 0.0, 0.0]
    saved = json.loads((ws / "calibrate" / "thresholds.json").read_text())
    assert saved["models"][0]["configurations"][0]["threshold"] == reference["threshold"]
    assert "| `trunc-384/int8` |" in (ws / "calibrate" / "summary.md").read_text()


def test_calibrate_bad_input_exits_2(tmp_path, mini_beir):
    ws = tmp_path / "ws"
    config = tmp_path / "domainfit.toml"
    config.write_text("[calibrate]\nbeta = 0\n")
    result = runner.invoke(app, ["calibrate", str(mini_beir), "-w", str(ws), "-c", str(config)])
    assert result.exit_code == 2 and f"{config}:2: calibrate.beta:" in result.output
    result = runner.invoke(app, ["calibrate", str(mini_beir), "-w", str(ws), "-C", "full/int4"])
    assert result.exit_code == 2 and "bad configuration 'full/int4'" in result.output
    result = runner.invoke(app, ["calibrate", str(mini_beir), "-w", str(ws), "--split", "nope"])
    assert result.exit_code == 2 and "available: dev, test, train" in result.output
    assert not (ws / "calibrate").exists()
