"""The running service follows the production pointer: a promotion and a rollback under load, with no failed request.

``domainfit serve`` runs in its own process (a fresh interpreter; LanceDB is
not fork-safe) on a free 127.0.0.1 port over a real LanceDB index with two
model versions. Two client threads send a bounded stream of searches while
the test replaces ``serving.json`` (`write_pointer`, one rename) with a
pointer to the other version, then back. Every request must succeed; every
response must be exactly the results of the version it names (never a mix);
responses after the switch come from the new version; after the rollback the
queries return exactly what they returned before the promotion.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import httpx
import pytest

from domainfit.index.backend import SearchQuery, open_index, read_pointer, write_pointer
from serve_support import build_served_index, running_service

QUERIES = ["reset password link", "refund a payment", "dns ttl", "ssh key rotation", "resize a disk", "invoice pdf"]
#: Requests each client thread may send at most (the loops stop earlier when the test is done).
MAX_REQUESTS = 400


def _expected(served) -> dict[str, dict[str, list[str]]]:
    """Per version and query, the ids an exact in-process search returns (k = 5)."""
    store, _ = open_index(served.index)
    try:
        return {
            version: {
                q: [h.id for h in store.search(SearchQuery(vector=enc.encode([q])[0].tolist(), k=5, version=version))]
                for q in QUERIES
            }
            for version, enc in served.encoders.items()
        }
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, minilm):
    root = tmp_path_factory.mktemp("serve-follow")
    served = build_served_index(root, minilm)
    (root / "domainfit.toml").write_text("[serve]\npointer_poll_ms = 100\n")
    args = ["--workspace", str(served.workspace), "--config", str(root / "domainfit.toml"),
            "--version-model", f"cls={served.cls_model}"]  # fmt: skip
    with running_service(args, root) as service:
        yield service.client, served, service.port


class Load:
    """Client threads searching the queries in turn until stopped (or ``MAX_REQUESTS`` each), recording every answer."""

    def __init__(self, port: int, threads: int = 2) -> None:
        self.port = port
        self.stop = threading.Event()
        self.answers: list[tuple[float, float, str, int, dict | None]] = []  # start, end, query, status, body
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(threads)]

    def _loop(self, offset: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60) as client:
            for n in range(MAX_REQUESTS):
                if self.stop.is_set():
                    return
                query = QUERIES[(n + offset) % len(QUERIES)]
                start = time.monotonic()
                try:
                    response = client.post("/search", json={"query": query, "k": 5})
                    body = response.json() if response.status_code == 200 else None
                    with self.lock:
                        self.answers.append((start, time.monotonic(), query, response.status_code, body))
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.failures.append(f"{query}: {exc!r}")

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def count(self) -> int:
        with self.lock:
            return len(self.answers)

    def wait_for(self, n: int, timeout: float = 300) -> None:
        """Wait until ``n`` more answers arrived."""
        target, deadline = self.count() + n, time.monotonic() + timeout
        while self.count() < target:
            assert time.monotonic() < deadline and not self.stop.is_set(), "the load stalled"
            time.sleep(0.05)


def _switch_to(client: httpx.Client, version: str, timeout: float = 300) -> float:
    """Wait until ``/info`` says production serves ``version``; return when it did."""
    deadline = time.monotonic() + timeout
    while client.get("/info").json()["version"] != version:
        assert time.monotonic() < deadline, f"the service did not switch to {version}"
        time.sleep(0.05)
    return time.monotonic()


def test_promote_and_rollback_under_load_fail_no_request_and_never_mix(server):
    client, served, port = server
    expected = _expected(served)
    old = read_pointer(served.index)
    new = dataclasses.replace(old, version="cls", model=str(served.cls_model), created="2099-01-01T00:00:00Z")
    before = {q: [h["id"] for h in client.post("/search", json={"query": q, "k": 5}).json()["hits"]] for q in QUERIES}
    with Load(port) as load:
        load.wait_for(10)
        write_pointer(served.index, new)  # a promotion: one rename
        promoted = _switch_to(client, "cls")
        load.wait_for(20)
        rollback = time.monotonic()
        write_pointer(served.index, old)  # the rollback
        rolled_back = _switch_to(client, "base")
        load.wait_for(20)
    assert load.failures == []
    assert {status for _, _, _, status, _ in load.answers} == {200}
    for _, _, query, _, body in load.answers:  # each response is wholly one version's
        assert body is not None and [h["id"] for h in body["hits"]] == expected[body["version"]][query], body
    versions = [body["version"] for _, _, _, _, body in load.answers if body]
    assert "cls" in versions and versions[0] == "base"
    # a request sent after /info reported the switch, answered before the rollback was written: the new version
    between = [b["version"] for start, end, _, _, b in load.answers if b and promoted < start and end < rollback]
    assert between and set(between) == {"cls"}
    after = [body["version"] for start, _, _, _, body in load.answers if body and start > rolled_back]
    assert after and set(after) == {"base"}
    again = {q: [h["id"] for h in client.post("/search", json={"query": q, "k": 5}).json()["hits"]] for q in QUERIES}
    assert again == before  # the rollback returns exactly what production returned before
    info = client.get("/info").json()
    assert info["pointer"]["switches"] == 2 and info["pointer"]["errors"] == 0
    assert "domainfit_pointer_switches_total 2.0" in client.get("/metrics").text


def test_a_damaged_pointer_is_not_applied_and_the_service_keeps_serving(server):
    client, served, _ = server
    pointer_file = served.index / "serving.json"
    good = pointer_file.read_bytes()
    errors = client.get("/info").json()["pointer"]["errors"]
    tmp = pointer_file.with_suffix(".tmp")
    tmp.write_text('{"format": 1, "version": ')
    os.replace(tmp, pointer_file)
    try:
        deadline = time.monotonic() + 60
        while client.get("/info").json()["pointer"]["errors"] == errors:
            assert time.monotonic() < deadline, "the damaged pointer was not noticed"
            time.sleep(0.05)
        answer = client.post("/search", json={"query": "dns ttl", "k": 5})
        assert answer.status_code == 200 and answer.json()["version"] == "base"
    finally:
        tmp.write_bytes(good)
        os.replace(tmp, pointer_file)


def test_monitor_runs_the_canaries_through_the_running_service(server, tmp_path):
    import json

    from typer.testing import CliRunner

    from conftest import build_mini_dataset
    from domainfit.cli import app

    _, served, port = server
    dataset = build_mini_dataset()
    canaries = tmp_path / "canaries.jsonl"
    canaries.write_text("".join(
        json.dumps({"id": q, "query": dataset.queries[q].text, "relevant": sorted(rel)}) + "\n"
        for q, rel in dataset.qrels["test"].items()))  # fmt: skip
    args = ["monitor", "--workspace", str(served.workspace), "--canaries", str(canaries),
            "--url", f"http://127.0.0.1:{port}", "--json"]  # fmt: skip
    runner = CliRunner(env={"NO_COLOR": "1"})
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    recorded = json.loads(first.stdout)
    assert recorded["baseline_recorded"] is True and recorded["canary"]["searched"] == f"http://127.0.0.1:{port}"
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    result = json.loads(second.stdout)
    assert result["baseline_recorded"] is False and result["status"] == "healthy"
    metrics = {m["metric"]: m["value"] for m in result["verdict"]["canary"]["metrics"]}
    assert metrics["recall@10"] == 1.0  # each mini query's one document is in its top 10
