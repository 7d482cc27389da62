"""``domainfit index`` on a real BEIR folder with the packaged MiniLM: parity with bench, increments, bad input.

Parity: the benchmark queries searched through the built index (flat search,
the pointer's model and encoding settings) give bench's exact-search NDCG@10
for the same model, to 1e-4.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import build_mini_dataset
from domainfit.cli import app
from domainfit.core.workspace import Workspace
from domainfit.data.beir import load_beir, write_beir
from domainfit.evaluation.config import EvalConfig
from domainfit.evaluation.metrics import evaluate
from domainfit.index.backend import SearchQuery, open_index, read_pointer
from domainfit.index.config import IndexConfig
from domainfit.retrieval.dense import DenseRetriever
from domainfit.stages.index import deployed_system

runner = CliRunner(env={"NO_COLOR": "1"})


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """A mini BEIR folder and a workspace whose index was built once (base model: nothing was decided)."""
    root = tmp_path_factory.mktemp("index-stage")
    data = write_beir(build_mini_dataset(), root / "mini")
    workspace = root / "ws"
    result = runner.invoke(app, ["index", str(data), "--workspace", str(workspace), "--json", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    return data, workspace


def test_search_through_the_index_gives_bench_ndcg(built: tuple[Path, Path]) -> None:
    data, workspace = built
    dataset = load_beir(data)
    qrels = dataset.qrels["test"]
    queries = {qid: dataset.queries[qid].text for qid in qrels}
    store, pointer = open_index(workspace / "index")
    try:
        dense = DenseRetriever(pointer.model, max_seq_length=pointer.max_seq_length)
        assert dense.query_prompt_name == pointer.query_prompt_name
        dense.index(dataset.corpus)  # bench's exact search
        exact = dense.search(queries, k=100)
        vectors = dense.encode_queries(list(queries.values()))
        served = {
            qid: {h.id: h.score for h in store.search(SearchQuery(vector=vec.tolist(), k=100, version=pointer.version))}
            for qid, vec in zip(queries, vectors, strict=True)
        }
    finally:
        store.close()
    ours, theirs = evaluate(qrels, served, ["ndcg@10"])["ndcg@10"], evaluate(qrels, exact, ["ndcg@10"])["ndcg@10"]
    assert abs(ours - theirs) <= 1e-4, (ours, theirs)
    for qid in queries:  # the same top 10, query by query
        assert set(list(served[qid])[:10]) == set(sorted(exact[qid], key=lambda d: -exact[qid][d])[:10])


def test_rerun_bad_row_and_one_changed_document(built: tuple[Path, Path], tmp_path: Path) -> None:
    data, workspace = built
    args = ["index", str(data), "--workspace", str(workspace), "--json", "--batch-size", "8"]
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["up_to_date"] is True

    home = workspace / "index"
    pointer_bytes = (home / "serving.json").read_bytes()
    store, _ = open_index(home)
    versions = store.table.list_versions()  # type: ignore[attr-defined]
    store.close()
    manifest = (home / "build" / "manifest.json").read_bytes()

    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    lines = (broken / "corpus.jsonl").read_text().splitlines()
    lines[0] = json.dumps({**json.loads(lines[0]), "text": "an edited first document", "year": 2020})
    lines[2] = json.dumps({**json.loads(lines[2]), "year": "twenty"})  # year: an int on line 1, a string on line 3
    (broken / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    bad = runner.invoke(app, ["index", str(broken), "--workspace", str(workspace)])
    assert bad.exit_code == 2
    assert "corpus.jsonl:3: year: is str, but it is int on line 1" in bad.output
    assert "Traceback" not in bad.output
    assert (home / "serving.json").read_bytes() == pointer_bytes
    assert (home / "build" / "manifest.json").read_bytes() == manifest
    store, _ = open_index(home)
    assert store.table.list_versions() == versions  # type: ignore[attr-defined]
    store.close()

    lines[2] = json.dumps({**json.loads(lines[2]), "year": 2021})
    (data / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    changed = runner.invoke(app, args)
    assert changed.exit_code == 0, changed.output
    result = json.loads(changed.stdout)
    assert result["sync"]["embedded"] == 2 and result["sync"]["written"] == 2  # lines 1 and 3 changed
    assert result["sync"]["already_embedded"] == result["documents"] - 2
    pointer = read_pointer(home)
    assert pointer.to_json() == result["pointer"] and pointer.table_version > json.loads(pointer_bytes)["table_version"]
    store, _ = open_index(home)
    try:
        hits = store.search(SearchQuery(vector=[0.0] * 383 + [1.0], k=3, filters={"year": 2021}, fields=("year",)))
        assert [h.fields["year"] for h in hits] == [2021]
    finally:
        store.close()


def test_deployed_system_follows_the_decision(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    (workspace.root / "decide").mkdir(parents=True)
    (workspace.root / "eval").mkdir()
    systems = [
        {"name": "dense:fine-tuned", "config": {"model": "/m/ft", "max_seq_length": 128}},
        {"name": "hybrid-convex:fine-tuned", "config": {"fusion": "convex", "alpha": 0.8, "model": "/m/ft"}},
        {"name": "dense:base", "config": {"model": "base-model", "max_seq_length": 256}},
    ]
    (workspace.root / "eval" / "metrics.json").write_text(json.dumps({"systems": systems}))
    decision = workspace.root / "decide" / "decision-after.json"
    for system, expected in (
        ("hybrid-convex:fine-tuned", ("/m/ft", "hybrid", "convex", 0.8, 128)),
        ("dense:base", ("base-model", "dense", "rrf", None, 256)),
        ("bm25", ("base-model", "bm25", "rrf", None, 256)),
    ):
        if system == "bm25":
            systems.append({"name": "bm25", "config": {}})
            (workspace.root / "eval" / "metrics.json").write_text(json.dumps({"systems": systems}))
        decision.write_text(json.dumps({"numbers": {"deploy": {"system": system}}}))
        got = deployed_system(workspace, IndexConfig(), EvalConfig())
        assert (got.model, got.mode, got.fusion, got.alpha, got.max_seq_length) == expected
        assert got.system == system
    override = deployed_system(workspace, IndexConfig(model="other"), EvalConfig())
    assert (override.model, override.mode) == ("other", "dense")


def _rows(home: Path) -> dict[str, tuple[str, list[float] | None]]:
    """Every row of the built table: id → (content hash, the vector of its only version or None)."""
    from domainfit.index.lance import LanceBackend

    store = LanceBackend(home / "lancedb", "mini", read_only=True)
    try:
        column = next(f"vec_{v}" for v in store.versions())
        rows = store.table.to_arrow().select(["id", "content_hash", column]).to_pylist()
    finally:
        store.close()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a document is duplicated"
    return {r["id"]: (r["content_hash"], r[column]) for r in rows}


@pytest.mark.slow
def test_sigkill_the_index_command_at_random_points(tmp_path: Path, mini_beir: Path) -> None:
    """Kill the real ``domainfit index`` 10 times at random points; each restart redoes no committed batch."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    import numpy as np

    script = Path(sys.executable).with_name("domainfit")
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": os.pathsep.join(sys.path)}

    def command(ws: Path) -> list[str]:
        return [str(script), "index", str(mini_beir), "--workspace", str(ws), "--batch-size", "2", "--json"]

    start = time.perf_counter()
    done = subprocess.run(command(tmp_path / "reference"), env=env, capture_output=True, text=True, check=True)
    span = time.perf_counter() - start
    reference = _rows(tmp_path / "reference" / "index")
    total = json.loads(done.stdout)["documents"]
    ws, rng = tmp_path / "ws", random.Random(7)
    for _ in range(10):
        proc = subprocess.Popen(command(ws), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(rng.uniform(0.3, 1.0) * span)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        home = ws / "index"
        if (home / "lancedb" / "mini.lance").exists():
            rows = _rows(home)
            assert set(rows) <= set(reference)
            for ident, (digest, vector) in rows.items():
                assert digest == reference[ident][0]
                if vector is not None:
                    np.testing.assert_allclose(vector, reference[ident][1], atol=1e-5)
        if (home / "serving.json").exists():
            json.loads((home / "serving.json").read_text())  # never half-written
    before = sum(v is not None for _, v in _rows(ws / "index").values()) if (ws / "index" / "lancedb").exists() else 0
    final = subprocess.run(command(ws), env=env, capture_output=True, text=True, check=True)
    result = json.loads(final.stdout)
    if not result["up_to_date"]:
        assert result["sync"]["embedded"] == total - before  # committed batches were not embedded again
    rows = _rows(ws / "index")
    assert {k: v[0] for k, v in rows.items()} == {k: v[0] for k, v in reference.items()}
    assert all(v is not None for _, v in rows.values())
