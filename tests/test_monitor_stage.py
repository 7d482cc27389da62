"""``domainfit monitor`` end to end: a real index built by ``domainfit index``, a query log written by the real service.

The index holds 150 documents of the demo corpus (packaged MiniLM, LanceDB);
the query log is written by the search service itself (its FastAPI app in
process, its `QueryLog`), searching demo queries and, for the drifted stream,
the bundled general-knowledge queries. Canaries are the benchmark's test
queries. A healthy stream exits 0 (the first run records the canary
baseline), a stream shifted to another domain exits 1 with the embedding
statistics alerting, a broken re-index that loses the canaries' documents
exits 1 on the canaries, and a malformed log line exits 2 with file:line
before any model loads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.core.types import Query
from domainfit.data.beir import BeirDataset, load_beir, write_beir
from domainfit.data.demo import demo_path
from domainfit.data.general_set import bundled_pairs_path
from domainfit.index.backend import open_index
from domainfit.serve.config import ServeConfig
from domainfit.serve.encoder import SentenceTransformerEncoder
from domainfit.serve.querylog import QueryLog
from domainfit.serve.service import Served

runner = CliRunner(env={"NO_COLOR": "1"})
#: Small windows and bounded permutations: the test's cost, not the defaults'.
CONFIG = """\
[monitor]
reference_size = 60
current_size = 60
permutations = 500
max_samples = 200
canary_max = 30
"""
#: 500 permutations put the smallest p-value at 1/501, which survives Holm's correction over the ~14 statistics.


def _subset(root: Path) -> Path:
    """A BEIR folder of 150 demo documents: the first 30 judged test queries' documents and others."""
    demo = load_beir(demo_path())
    test = demo.qrels["test"]
    judged = sorted(test)[:30]
    keep = {d for q in judged for d in test[q]}
    for doc in demo.corpus:
        if len(keep) >= 150:
            break
        keep.add(doc)
    corpus = {d: demo.corpus[d] for d in demo.corpus if d in keep}
    qrels = {q: {d: g for d, g in test[q].items() if d in keep} for q in judged}
    queries = {q: demo.queries[q] for q in judged}
    return write_beir(BeirDataset(corpus=corpus, queries=queries, qrels={"test": qrels}), root / "demo150")


def _demo_queries() -> list[str]:
    """Every demo query text, in a fixed shuffled order."""
    texts = [q.text for q in load_beir(demo_path()).queries.values()]
    order = np.random.default_rng(7).permutation(len(texts))
    return [texts[i] for i in order]


def _general_queries() -> list[str]:
    """The bundled general-knowledge queries."""
    lines = bundled_pairs_path().read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["query"] for line in lines if line.strip()]


def write_log(workspace: Path, minilm, path: Path, queries: list[str]) -> Path:
    """Search ``queries`` through the real service (in process) with its query log on ``path``."""
    from fastapi.testclient import TestClient

    from domainfit.serve.app import create_app

    store, pointer = open_index(workspace / "index")
    try:
        served = Served(version=pointer.version, model=pointer.model, mode=pointer.mode, tag=pointer.tag)
        encoders = {pointer.version: SentenceTransformerEncoder(minilm, pointer.model)}
        app_ = create_app(store, encoders, served, ServeConfig(), query_log=QueryLog(path), pointer=pointer)
        with TestClient(app_) as client:
            for text in queries:
                assert client.post("/search", json={"query": text, "k": 10}).status_code == 200
    finally:
        store.close()
    return path


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The BEIR subset, a workspace whose index ``domainfit index`` built, and the monitor config."""
    root = tmp_path_factory.mktemp("monitor-stage")
    data = _subset(root)
    workspace = root / "ws"
    built = runner.invoke(app, ["index", str(data), "--workspace", str(workspace), "--json", "--batch-size", "16"])
    assert built.exit_code == 0, built.output
    config = root / "domainfit.toml"
    config.write_text(CONFIG)
    return data, workspace, config


def _monitor(data: Path, workspace: Path, config: Path, log: Path, *extra: str):
    args = ["monitor", str(data), "--workspace", str(workspace), "--config", str(config), "--log", str(log), "--json"]
    return runner.invoke(app, [*args, *extra])


def test_a_healthy_stream_exits_0_and_the_first_run_records_the_canary_baseline(indexed, minilm, tmp_path):
    data, workspace, config = indexed
    demo = _demo_queries()
    log = write_log(workspace, minilm, tmp_path / "queries.jsonl", demo[:120])
    baseline = workspace / "index" / "canary-baseline.json"
    baseline.unlink(missing_ok=True)

    first = _monitor(data, workspace, config, log)
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)
    assert result["status"] == "healthy" and result["baseline_recorded"] is True
    assert any("recorded one now" in note for note in result["notes"]) and baseline.is_file()
    assert result["windows"]["n_reference"] == 60 and result["windows"]["n_current"] == 60
    decided = {d["name"]: d for d in result["verdict"]["decisions"]}
    assert {"embedding_centroid", "embedding_mmd", "top1_psi", "length_ks", "empty_rate"} <= set(decided)
    assert not any(d["alert"] for d in decided.values())
    metrics = {m["metric"]: m for m in result["verdict"]["canary"]["metrics"]}
    assert metrics["recall@10"]["value"] == metrics["recall@10"]["baseline"] > 0.5

    second = _monitor(data, workspace, config, log)
    assert second.exit_code == 0, second.output
    again = json.loads(second.stdout)
    assert again["baseline_recorded"] is False and again["canary"]["baseline"] == result["canary"]["baseline"]
    folder = workspace / "monitor"
    history = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    assert len(history) >= 2 and [h["status"] for h in history[-2:]] == ["healthy", "healthy"]
    assert history[-1]["canary"]["recall@10"]["value"] == metrics["recall@10"]["value"]
    assert (folder / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "# Monitoring" in (folder / "monitor.md").read_text()
    assert json.loads((folder / "result.json").read_text())["time"] == again["time"]

    report = runner.invoke(app, ["report", "--workspace", str(workspace)])
    assert report.exit_code == 0, report.output
    assert "## Monitoring" in (workspace / "report" / "report.md").read_text()
    assert "monitoring over time" in (workspace / "report" / "report.html").read_text()


def test_a_stream_shifted_to_general_knowledge_exits_1(indexed, minilm, tmp_path):
    data, workspace, config = indexed
    demo, general = _demo_queries(), _general_queries()
    log = write_log(workspace, minilm, tmp_path / "queries.jsonl", demo[:60] + general[:60])
    before = len((workspace / "monitor" / "history.jsonl").read_text().splitlines()) if (
        workspace / "monitor" / "history.jsonl").is_file() else 0  # fmt: skip
    drifted = _monitor(data, workspace, config, log)
    assert drifted.exit_code == 1, drifted.output
    result = json.loads(drifted.stdout)
    assert result["status"] == "alert"
    alerting = {d["name"] for d in result["verdict"]["decisions"] if d["alert"]}
    assert {"embedding_centroid", "embedding_mmd", "embedding_classifier", "top1_psi", "top1_ks"} <= alerting
    assert not result["verdict"]["canary"]["alert"]  # the index is fine: only the stream moved
    history = (workspace / "monitor" / "history.jsonl").read_text().splitlines()
    assert len(history) == before + 1 and json.loads(history[-1])["status"] == "alert"


def test_a_reindex_that_loses_the_canaries_documents_alerts_on_the_canaries(indexed, tmp_path):
    data, workspace, config = indexed
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws)
    canaries = tmp_path / "canaries.jsonl"
    dataset = load_beir(data)
    chosen = sorted(dataset.qrels["test"])[:10]
    canaries.write_text("".join(
        json.dumps({"id": q, "query": dataset.queries[q].text, "relevant": sorted(dataset.qrels["test"][q])}) + "\n"
        for q in chosen))  # fmt: skip
    args = ["monitor", "--workspace", str(ws), "--config", str(config), "--canaries", str(canaries), "--json"]
    first = runner.invoke(app, args)  # no DATA: the canary list alone, no query log: canaries only
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["baseline_recorded"] is True

    lost = {d for q in chosen[:5] for d in dataset.qrels["test"][q]}
    broken = BeirDataset(corpus={d: doc for d, doc in dataset.corpus.items() if d not in lost},
                         queries=dict[str, Query](dataset.queries), qrels=dataset.qrels)  # fmt: skip
    broken_data = write_beir(broken, tmp_path / "broken")
    reindexed = runner.invoke(app, ["index", str(broken_data), "--workspace", str(ws), "--json", "--batch-size", "16"])
    assert reindexed.exit_code == 0, reindexed.output
    second = runner.invoke(app, args)
    assert second.exit_code == 1, second.output
    result = json.loads(second.stdout)
    assert result["baseline_recorded"] is False and result["verdict"]["canary"]["alert"]
    assert set(chosen[:5]) <= set(result["verdict"]["canary"]["failed_queries"])
    assert any("canary recall@10" in reason for reason in result["verdict"]["reasons"])


def test_bad_input_exits_2_with_file_and_line_before_anything_loads(indexed, tmp_path):
    data, workspace, config = indexed
    log = tmp_path / "queries.jsonl"
    good = {"format_version": 1, "query": "open a file", "scores": [0.5], "ids": ["d1"], "version": "x"}
    log.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n" + json.dumps({**good, "query": 5}) + "\n")
    ws = tmp_path / "ws"
    shutil.copytree(workspace, ws, ignore=shutil.ignore_patterns("monitor"))
    bad = _monitor(data, ws, config, log)
    assert bad.exit_code == 2, bad.output
    lines = bad.output.strip().splitlines()
    assert len(lines) == 1 and f"{log}:3: query" in lines[0] and "Traceback" not in bad.output
    assert not (ws / "monitor").exists()  # nothing written

    log.write_text(json.dumps(good) + "\n" + "{not json\n" + json.dumps(good) + "\n")
    assert f"{log}:2:" in _monitor(data, ws, config, log).output
    log.write_text(json.dumps({**good, "scores": [0.5, "x"]}) + "\n")
    assert f"{log}:1: scores.1" in _monitor(data, ws, config, log).output

    canaries = tmp_path / "canaries.jsonl"
    canaries.write_text('{"query": "open a file", "relevant": ["d1"]}\n{"query": "read bytes", "relevant": []}\n')
    log.write_text(json.dumps(good) + "\n")
    refused = _monitor(data, ws, config, log, "--canaries", str(canaries))
    assert refused.exit_code == 2 and f"{canaries}:2: relevant" in refused.output
    missing = _monitor(data, ws, config, tmp_path / "absent.jsonl")
    assert missing.exit_code == 2 and "absent.jsonl" in missing.output and "file not found" in missing.output
    no_index = _monitor(data, tmp_path / "empty-ws", config, log)
    assert no_index.exit_code == 2 and "no index" in no_index.output


def test_a_torn_last_line_is_skipped(tmp_path):
    from domainfit.monitor.logs import read_query_log

    good = {"format_version": 1, "query": "open a file", "scores": [0.5], "ids": ["d1"]}
    log = tmp_path / "queries.jsonl"
    log.write_text(json.dumps(good) + "\n" + json.dumps(good)[:20])
    assert len(read_query_log(log)) == 1
    log.write_text(json.dumps(good) + "\n" + json.dumps(good)[:20] + "\n")  # ended: not torn, malformed
    with pytest.raises(Exception, match=":2:"):
        read_query_log(log)
