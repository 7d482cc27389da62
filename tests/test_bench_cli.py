"""End-to-end: `domainfit bench` on a small real BEIR folder with the packaged model."""

import json

import pytest
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.evaluation.metrics import evaluate
from domainfit.evaluation.trec import read_trec_run

runner = CliRunner()


@pytest.fixture()
def bench_run(tmp_path, mini_beir):
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["bench", str(mini_beir), "--workspace", str(ws), "--quiet"])
    assert result.exit_code == 0, result.output
    return ws, result


def test_bench_writes_metrics_runs_config_and_manifest(bench_run, mini_beir):
    ws, result = bench_run
    out = ws / "bench"
    metrics = json.loads((out / "metrics.json").read_text())
    names = [s["name"] for s in metrics["systems"]]
    assert names == ["bm25", "dense", "hybrid-rrf", "hybrid-convex"]
    assert metrics["n_queries"] == 8 and metrics["split"] == "test"
    for system in metrics["systems"]:
        assert set(system["metrics"]) == {"ndcg@10", "recall@100", "mrr@10", "map@100"}
        assert 0.0 <= system["metrics"]["ndcg@10"] <= 1.0
    # the convex weight was tuned on the dev split
    assert metrics["hybrid_tuning"]["all-MiniLM-L6-v2"]["split"] == "dev"
    # run files re-evaluate to the numbers in metrics.json
    from domainfit.data.beir import load_beir

    qrels = load_beir(mini_beir).qrels["test"]
    for system in metrics["systems"]:
        run = read_trec_run(out / "runs" / f"{system['name']}.trec")
        assert evaluate(qrels, run, ["ndcg@10"])["ndcg@10"] == pytest.approx(system["metrics"]["ndcg@10"], abs=1e-9)
    config = json.loads((out / "config.json").read_text())
    assert config["bench"]["split"] == "test"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "bench" and "metrics.json" in manifest["outputs"]
    slices = metrics["slices"]["dense"]
    assert slices[0]["slice"] == "all" and {row["slice"] for row in slices} >= {"length", "identifier", "family"}
    summary = (out / "summary.md").read_text()
    assert "| hybrid-convex |" in summary and "## ndcg@10 per slice" in summary
    assert "Baselines on 'test'" in result.output and "per slice" in result.output


def test_bench_rerun_is_a_noop_and_force_reruns(bench_run, mini_beir):
    ws, _ = bench_run
    before = (ws / "bench" / "metrics.json").stat().st_mtime_ns
    again = runner.invoke(app, ["bench", str(mini_beir), "--workspace", str(ws), "--quiet"])
    assert again.exit_code == 0 and "up to date" in again.output
    assert (ws / "bench" / "metrics.json").stat().st_mtime_ns == before
    forced = runner.invoke(app, ["bench", str(mini_beir), "--workspace", str(ws), "--quiet", "--force"])
    assert forced.exit_code == 0 and "up to date" not in forced.output
    assert (ws / "bench" / "metrics.json").stat().st_mtime_ns != before
    # document embeddings came from the cache the second time
    assert any((ws / "cache" / "embeddings").rglob("*.keys"))


def test_bench_json_output(tmp_path, mini_beir):
    result = runner.invoke(
        app, ["bench", str(mini_beir), "--workspace", str(tmp_path / "ws"), "--json", "--split", "dev"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["split"] == "dev" and data["format_version"] == 1


def test_bench_unknown_split_is_bad_input(tmp_path, mini_beir):
    ws = tmp_path / "ws"
    result = runner.invoke(app, ["bench", str(mini_beir), "--workspace", str(ws), "--split", "nope"])
    assert result.exit_code == 2
    assert "qrels" in result.output and "available: dev, test, train" in result.output
    assert not ws.exists()


def test_bench_with_reranker(tmp_path, mini_beir, tiny_cross_encoder):
    ws = tmp_path / "ws"
    result = runner.invoke(
        app,
        ["bench", str(mini_beir), "--workspace", str(ws), "--quiet", "--reranker", str(tiny_cross_encoder)],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((ws / "bench" / "metrics.json").read_text())
    rerank = metrics["systems"][-1]
    assert rerank["name"] == "rerank" and rerank["config"]["depth"] == 50
    run = read_trec_run(ws / "bench" / "runs" / "rerank.trec")
    assert all(len(docs) <= 50 for docs in run.values())


def test_split_and_validate_report_leakage(tmp_path, mini_beir):
    # plant a leak: a test query's family also judged in train
    train = mini_beir / "qrels" / "train.tsv"
    train.write_text(train.read_text() + "q017\td017\t1\n")
    leaked = runner.invoke(app, ["validate", str(mini_beir)])
    assert leaked.exit_code == 2 and "cross splits" in leaked.output
    out = tmp_path / "resplit"
    done = runner.invoke(app, ["split", str(mini_beir), "--out", str(out), "--seed", "3"])
    assert done.exit_code == 0, done.output
    clean = runner.invoke(app, ["validate", str(out)])
    assert clean.exit_code == 0, clean.output


def test_bench_on_demo_corpus_dense_beats_bm25(tmp_path):
    pytest.importorskip("domainfit.data.demo")
    result = runner.invoke(app, ["bench", "--demo", "--workspace", str(tmp_path / "ws"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    scores = {s["name"]: s["metrics"]["ndcg@10"] for s in data["systems"]}
    assert data["n_documents"] >= 2000 and data["n_queries"] >= 400
    assert scores["dense"] > scores["bm25"]


test_bench_on_demo_corpus_dense_beats_bm25 = pytest.mark.slow(test_bench_on_demo_corpus_dense_beats_bm25)
