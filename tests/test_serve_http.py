"""``domainfit serve`` over real HTTP: the command started in its own process on a free 127.0.0.1 port.

The server is the real command (a fresh interpreter, not a fork: LanceDB is not
fork-safe) over a real LanceDB workspace index, with a bearer token, a query
log, a second model version and small caps; every request goes over the
socket. A token given to a loopback-only server is accepted and enforced (other
users of the machine reach 127.0.0.1 too): the 401s below are from such a server.
Binding a non-loopback address without a token is refused before anything loads.
"""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from domainfit.index.backend import SearchQuery, open_index
from serve_support import CLI, TOKEN, build_served_index, running_service, service_env

CONFIG = """\
[serve]
max_k = 20
max_query_chars = 200
max_batch = 4
max_body_bytes = 4096
"""
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, env=service_env())


@pytest.fixture(scope="module")
def server(tmp_path_factory, minilm):
    root = tmp_path_factory.mktemp("serve-http")
    served = build_served_index(root, minilm)
    (root / "domainfit.toml").write_text(CONFIG)
    (root / "token").write_text(TOKEN + "\n")
    log = root / "queries.jsonl"
    args = ["--workspace", str(served.workspace), "--config", str(root / "domainfit.toml"),
            "--token-file", str(root / "token"), "--query-log", str(log),
            "--version-model", f"cls={served.cls_model}"]  # fmt: skip
    with running_service(args, root, AUTH) as service:
        yield service.client, served, log


def _error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == error_type, body


def test_missing_and_wrong_token_are_401_the_right_one_200(server):
    client, _, _ = server
    _error(client.post("/search", json={"query": "reset password link"}), 401, "Unauthorized")
    _error(client.post("/search", json={"query": "x"}, headers={"Authorization": "Bearer not-the-token-0000"}),
           401, "Unauthorized")  # fmt: skip
    _error(client.get("/metrics"), 401, "Unauthorized")
    ok = client.post("/search", json={"query": "reset password link"}, headers=AUTH)
    assert ok.status_code == 200 and ok.json()["hits"][0]["id"] == "d002"


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_search_modes_over_the_socket(server, mode):
    client, served, _ = server
    body = client.post("/search", json={"query": "reset password link", "mode": mode, "k": 5}, headers=AUTH).json()
    assert body["mode"] == mode and body["hits"][0]["id"] == "d002"
    store, _ = open_index(served.index)
    try:
        vector = served.encoders["base"].encode(["reset password link"])[0].tolist() if mode != "bm25" else None
        want = store.search(SearchQuery(text="reset password link", vector=vector, mode=mode, k=5, version="base"))
    finally:
        store.close()
    assert [h["id"] for h in body["hits"]] == [h.id for h in want]


def test_filters_and_versions_over_the_socket(server):
    client, served, _ = server
    filtered = client.post(
        "/search", json={"query": "payment", "filters": {"topic": "billing"}, "fields": ["topic"]}, headers=AUTH
    ).json()["hits"]
    assert len(filtered) == 4 and {h["fields"]["topic"] for h in filtered} == {"billing"}
    other = client.post("/search", json={"query": "payment", "model_version": "cls", "k": 6}, headers=AUTH).json()
    assert other["version"] == "cls"
    store, _ = open_index(served.index)
    try:
        vector = served.encoders["cls"].encode(["payment"])[0].tolist()
        want = store.search(SearchQuery(vector=vector, mode="dense", k=6, version="cls"))
    finally:
        store.close()
    assert [h["id"] for h in other["hits"]] == [h.id for h in want]
    _error(client.post("/search", json={"query": "x", "model_version": "v9"}, headers=AUTH), 404, "NotFound")
    info = client.get("/info", headers=AUTH).json()
    assert {v["version"] for v in info["versions"]} == {"base", "cls"} and info["auth"] is True


def test_each_cap_over_the_socket(server):
    client, _, _ = server
    _error(client.post("/search", json={"query": "x", "k": 21}, headers=AUTH), 422, "Validation")
    _error(client.post("/search", json={"query": "q" * 201}, headers=AUTH), 422, "Validation")
    _error(client.post("/embed", json={"inputs": ["a"] * 5}, headers=AUTH), 413, "PayloadTooLarge")
    assert len(client.post("/embed", json={"inputs": ["a"] * 4}, headers=AUTH).json()) == 4
    big = json.dumps({"query": "x", "pad": "p" * 5000}).encode()
    _error(client.post("/search", content=big, headers={**AUTH, "content-type": "application/json"}), 413,
           "PayloadTooLarge")  # fmt: skip

    def chunks():
        yield b'{"query": "'
        for _ in range(8):
            yield b"c" * 1000
        yield b'"}'

    streamed = client.post("/search", content=chunks(), headers={**AUTH, "content-type": "application/json"})
    _error(streamed, 413, "PayloadTooLarge")
    assert client.get("/health", headers=AUTH).status_code == 200  # the server is fine afterwards


def test_metrics_and_query_log_over_the_socket(server):
    client, _, log = server
    client.post("/search", json={"query": "dns ttl", "mode": "bm25", "k": 3}, headers=AUTH)
    client.post("/search", json={"query": "dns ttl"})  # 401
    text = client.get("/metrics", headers=AUTH).text
    assert 'domainfit_requests_total{endpoint="/search",method="POST",status="401"}' in text
    assert 'domainfit_searches_total{mode="bm25",version="base"}' in text
    deadline = time.monotonic() + 30
    while True:
        lines = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
        if any(line["query"] == "dns ttl" for line in lines) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    mine = [line for line in lines if line["query"] == "dns ttl"]
    assert len(mine) == 1 and mine[0]["mode"] == "bm25" and len(mine[0]["ids"]) == len(mine[0]["scores"]) <= 3


def test_a_non_loopback_host_without_a_token_is_refused_before_anything_loads(tmp_path):
    result = _run_cli("serve", "--host", "0.0.0.0", "--workspace", str(tmp_path / "none"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bearer token" in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "none").exists()


def test_bad_token_file_and_missing_index_exit_2(tmp_path):
    (tmp_path / "short").write_text("abc\n")
    short = _run_cli("serve", "--token-file", str(tmp_path / "short"), "--workspace", str(tmp_path / "ws"))
    assert short.returncode == 2 and "at least 16" in short.stderr and len(short.stderr.strip().splitlines()) == 1
    missing = _run_cli("serve", "--workspace", str(tmp_path / "ws"))
    assert missing.returncode == 2 and "no index" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
