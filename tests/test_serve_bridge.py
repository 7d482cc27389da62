"""``domainfit serve --bridge`` over real HTTP: bridged results, hybrid, the backfill, the promotion, the refusals.

The old model is the packaged MiniLM cut to two transformer layers, the new
one the full MiniLM (each a saved sentence-transformers folder). The index is
built with the old model and ``migrate bridge`` fits its map before any new
vector exists; the service (its own process, a free 127.0.0.1 port) then
answers with the new model's query vectors mapped into the old vectors' space.
Each bridged response is checked against the same computation done here
directly (the new model's query vector, `Bridge.apply`, a search of the old
column at production's tag). The backfill runs while the service answers;
after ``migrate promote`` the service searches the new version's own vectors,
unbridged; after ``migrate rollback`` the bridge is back. The refusals (no
map, a map the gate refused, a retention below the minimum, production on the
new version already, a new model of another width) are one line and exit 2.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from conftest import build_mini_dataset, save_shallow_copy
from domainfit.cli import app
from domainfit.core.errors import UsageError
from domainfit.core.models import load_bi_encoder
from domainfit.data.beir import write_beir
from domainfit.index.backend import SearchQuery, open_index, read_pointer
from domainfit.migrate.bridge import load_bridge
from domainfit.serve.bridge import check_bridge, read_bridge_facts
from domainfit.serve.encoder import SentenceTransformerEncoder
from serve_support import free_port

CLI = str(Path(sys.executable).parent / "domainfit")
runner = CliRunner(env={"NO_COLOR": "1"})
QUERIES = ["reset password link", "refund a payment", "dns ttl", "ssh key rotation", "resize a disk", "invoice pdf"]

CONFIG = """
[eval]
max_seq_length = 64
batch_size = 16

[index]
batch_size = 8

[migrate]
max_seq_length = 64
bridge_ranks = [16, 32]
bridge_ridge = [0.1]
min_lift = {min_lift}
max_canary_churn = 1.0
min_bridge_retention = {min_retention}

[serve]
pointer_poll_ms = 100
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "DOMAINFIT_SERVE_TOKEN"}


def _config(root: Path, name: str, *, min_lift: float = -1.0, min_retention: float = 0.0) -> Path:
    path = root / f"{name}.toml"
    path.write_text(CONFIG.format(min_lift=min_lift, min_retention=min_retention))
    return path


def _migrate(paths: dict[str, Path], step: str, *extra: str, ws: Path | None = None, config: str = "go") -> Any:
    args = ["migrate", step, str(paths["data"]), "-w", str(ws or paths["ws"]), "-c", str(paths[config]), "--json"]
    return runner.invoke(app, [*args, "--to", str(paths["new"]), *extra])


@pytest.fixture(scope="module")
def migration(tmp_path_factory, minilm) -> dict[str, Path]:
    """The mini BEIR folder, both models, the configs, a workspace indexed with the old model, and its bridge."""
    root = tmp_path_factory.mktemp("serve-bridge")
    data = write_beir(build_mini_dataset(), root / "mini")
    save_shallow_copy(minilm, root / "old-model")
    minilm.save(str(root / "new-model"))
    paths = {"root": root, "data": data, "ws": root / "ws", "old": root / "old-model", "new": root / "new-model",
             "go": _config(root, "go"), "strict": _config(root, "strict", min_lift=1.0)}  # fmt: skip
    built = runner.invoke(app, ["index", str(data), "-w", str(paths["ws"]), "-c", str(paths["go"]),
                                "--model", str(paths["old"]), "--quiet"])  # fmt: skip
    assert built.exit_code == 0, built.output
    bridged = _migrate(paths, "bridge")  # before the backfill: no new vector exists yet
    assert bridged.exit_code == 0, bridged.output
    return paths


@pytest.fixture(scope="module")
def server(migration):
    """``domainfit serve --bridge`` in its own process, with a query log; yields (client, port, query log)."""
    root, port = migration["root"], free_port()
    log = root / "queries.jsonl"
    cmd = [CLI, "serve", "--workspace", str(migration["ws"]), "--config", str(migration["go"]), "--port", str(port),
           "--bridge", "--query-log", str(log), "--quiet"]  # fmt: skip
    err = (root / "server.err").open("w")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=_env(), start_new_session=True)
    deadline = time.monotonic() + 900  # two models to load on a busy two-core machine
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=900) as client:  # a busy machine is slow
        try:
            while True:
                assert proc.poll() is None, (root / "server.err").read_text()
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.5)
            yield client, log
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            err.close()


def _encoder(model: Path) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(load_bi_encoder(str(model), max_seq_length=64), str(model.resolve()))


def _direct(ws: Path, queries: list[str], encoder: SentenceTransformerEncoder, *, bridged: bool, mode: str = "dense"):
    """Per query, (ids, scores) of production's search done here: encode, map (when ``bridged``), search."""
    store, pointer = open_index(ws / "index")
    bridge = load_bridge(ws / "migrate" / "bridge" / "bridge.npz")
    try:
        found = {}
        for q in queries:
            vector = encoder.encode([q], prompt_name=encoder.query_prompt_name)[0]
            if bridged:
                vector = bridge.apply(vector)
            dense = None if mode == "bm25" else vector.tolist()
            query = SearchQuery(text=q, vector=dense, mode=mode, k=10, version=pointer.version,
                                fusion=pointer.fusion, alpha=pointer.alpha)  # fmt: skip
            hits = store.search(query)
            found[q] = ([h.id for h in hits], [h.score for h in hits])
        return found
    finally:
        store.close()


def _search(client: httpx.Client, query: str, mode: str = "dense") -> dict[str, Any]:
    answer = client.post("/search", json={"query": query, "k": 10, "mode": mode})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _matches(body: dict[str, Any], expected: tuple[list[str], list[float]]) -> bool:
    ids, scores = expected
    got = [h["score"] for h in body["hits"]]
    return [h["id"] for h in body["hits"]] == ids and all(abs(a - b) <= 1e-5 for a, b in zip(got, scores, strict=True))


def _wait_version(client: httpx.Client, version: str, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (info := client.get("/info").json())["version"] != version:
        assert time.monotonic() < deadline, f"the service did not switch to {version}"
        time.sleep(0.1)
    return info


def test_bridged_searches_equal_the_map_applied_to_the_new_models_query(migration, server):
    client, log = server
    ws = migration["ws"]
    facts = json.loads((ws / "migrate" / "bridge" / "bridge.json").read_text())
    info = client.get("/info").json()
    old_version = read_pointer(ws / "index").version
    assert info["version"] == old_version == facts["old_version"]
    assert info["bridge"]["map"] == "migrate/bridge/bridge.npz"
    assert info["bridge"]["retention"] == pytest.approx(facts["retention"]["retention"], abs=1e-6)
    assert info["bridge"]["query_version"] == facts["new_version"] and info["bridge"]["document_version"] == old_version
    new, old = _encoder(migration["new"]), _encoder(migration["old"])
    expected = _direct(ws, QUERIES, new, bridged=True)
    unbridged = _direct(ws, QUERIES, old, bridged=False)
    for q in QUERIES:
        body = _search(client, q)
        assert body["bridge"]["kind"] == facts["chosen"] and body["version"] == old_version
        assert _matches(body, expected[q]), (q, body, expected[q])
    assert any(not _matches(_search(client, q), unbridged[q]) for q in QUERIES)  # not the old model's own answers
    hybrid = _direct(ws, QUERIES, new, bridged=True, mode="hybrid")
    bm25 = _direct(ws, QUERIES, new, bridged=False, mode="bm25")
    assert any(bm25[q][0] for q in QUERIES)  # BM25 finds something
    for q in QUERIES:
        fused = _search(client, q, "hybrid")
        assert fused["bridge"] is not None and _matches(fused, hybrid[q]), (q, fused)
        lexical = _search(client, q, "bm25")
        assert lexical["bridge"] is None and _matches(lexical, bm25[q])
    deadline = time.monotonic() + 30
    while len(log.read_text().splitlines()) < 3 * len(QUERIES) and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {line.get("bridge") for line in lines if line["mode"] != "bm25"} == {"migrate/bridge/bridge.npz"}
    assert all("bridge" not in line for line in lines if line["mode"] == "bm25")


def test_backfill_then_promotion_stops_the_bridge_and_rollback_brings_it_back(migration, server):
    client, _ = server
    ws, home = migration["ws"], migration["ws"] / "index"
    new, old_pointer = _encoder(migration["new"]), read_pointer(home)
    before = {q: _search(client, q) for q in QUERIES}
    filled = _migrate(migration, "backfill")  # while the service answers
    assert filled.exit_code == 0, filled.output
    new_version = json.loads(filled.stdout)["to_version"]
    for q in QUERIES:  # production did not move: the same bridged answers
        again = _search(client, q)
        assert again["bridge"] is not None and again["hits"] == before[q]["hits"]
    assert _migrate(migration, "compare").exit_code == 0
    promoted = runner.invoke(app, ["migrate", "promote", "-w", str(ws), "-c", str(migration["go"]), "--json"])
    assert promoted.exit_code == 0, promoted.output
    info = _wait_version(client, new_version)
    assert info["bridge"] is None
    direct = _direct(ws, QUERIES, new, bridged=False)  # the new version's own vectors, the new model's query
    for q in QUERIES:
        body = _search(client, q)
        assert body["version"] == new_version and body["bridge"] is None
        assert _matches(body, direct[q]), (q, body, direct[q])
    rolled = runner.invoke(app, ["migrate", "rollback", "-w", str(ws), "-c", str(migration["go"]), "--json"])
    assert rolled.exit_code == 0, rolled.output
    assert read_pointer(home) == old_pointer
    info = _wait_version(client, old_pointer.version)
    assert info["bridge"] is not None
    for q in QUERIES:
        assert _search(client, q)["hits"] == before[q]["hits"]  # the bridged answers of before the promotion


def _serve_refused(ws: Path, config: Path) -> str:
    """Run ``serve --bridge`` in-process; it must refuse before binding: exit 2, one line, no traceback."""
    result = runner.invoke(app, ["serve", "-w", str(ws), "-c", str(config), "--bridge", "--port", "0", "--quiet"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.timeout(900)
def test_serve_bridge_refusals(migration, server, tmp_path, minilm):
    ws, root = migration["ws"], migration["root"]
    retention = json.loads((ws / "migrate" / "bridge" / "bridge.json").read_text())["retention"]["retention"]

    def copy_ws(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(ws, target)
        return target

    none = copy_ws("no-map")
    shutil.rmtree(none / "migrate" / "bridge")
    assert "no bridge map at" in _serve_refused(none, migration["go"])

    if retention < 1.0:  # a minimum above what the bridge measured (raised after it was fitted)
        high = _config(root, "high", min_retention=min(1.0, retention + 0.01))
        assert "below min_bridge_retention" in _serve_refused(ws, high)
    facts = read_bridge_facts(ws / "migrate" / "bridge")  # the same check on the recorded facts, any retention
    with pytest.raises(UsageError, match=r"below min_bridge_retention 0\.950"):
        check_bridge(dataclasses.replace(facts, retention=0.9), served_version=facts.old_version,
                     served_model=facts.old_model, versions={facts.old_version: facts.dims[1]}, records={},
                     min_retention=0.95)  # fmt: skip

    gated = copy_ws("gated")
    refit = _migrate(migration, "bridge", "--force", ws=gated, config="strict")  # a lift of 1.0: no-go
    assert refit.exit_code == 1, refit.output
    assert "refused by the migration gate" in _serve_refused(gated, migration["go"])

    promoted = copy_ws("promoted")
    for step in ("backfill", "compare"):  # no-ops when the test before ran them
        assert _migrate(migration, step, ws=promoted).exit_code == 0
    done = runner.invoke(app, ["migrate", "promote", "-w", str(promoted), "-c", str(migration["go"]), "--force"])
    assert done.exit_code == 0, done.output
    assert "already serves the bridge's new version" in _serve_refused(promoted, migration["go"])

    from sentence_transformers import SentenceTransformer, models

    new = migration["new"]
    kept = new.with_name("new-model.kept")
    new.rename(kept)
    try:  # the new model's folder now holds a model of another width than the map was fitted on
        dense = models.Dense(384, 128)
        SentenceTransformer(modules=[minilm[0], minilm[1], dense], device="cpu").save(str(new))
        assert "now encodes 128 dimensions" in _serve_refused(ws, migration["go"])
    finally:
        shutil.rmtree(new, ignore_errors=True)
        kept.rename(new)
