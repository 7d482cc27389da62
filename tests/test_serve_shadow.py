"""Shadow mode: production answers, the shadow version's results are computed off the request path and compared.

The service is the real FastAPI application over a real LanceDB index of the
mini corpus with two model versions (``base`` serves, ``cls`` shadows; two
real models). With a stalled shadow worker (its encoder's lock held by the
test, so the worker is stuck inside a real encode) and a queue of one, every
request still succeeds at once, and what could not be queued is counted as
dropped in ``/info`` and ``/metrics``.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from domainfit.index.backend import SearchQuery, open_index
from domainfit.migrate.compare import list_agreement
from domainfit.serve.app import create_app
from domainfit.serve.config import ServeConfig
from domainfit.serve.service import Served
from domainfit.serve.shadow import ShadowSpec
from serve_support import build_served_index

QUERIES = ["reset password link", "refund a payment", "dns ttl", "ssh key rotation", "resize a disk", "invoice pdf",
           "vpn tunnel", "cpu quota"]  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory, minilm):
    return build_served_index(tmp_path_factory.mktemp("shadow"), minilm)


def _app(served, log, queue: int):
    store, pointer = open_index(served.index)
    spec = Served(version="base", model=pointer.model, tag=pointer.tag)
    shadow = ShadowSpec("cls", served.encoders["cls"], log)
    settings = ServeConfig(shadow_queue=queue)
    return store, create_app(store, served.encoders, spec, settings, pointer=pointer, shadow=shadow)


def test_each_shadowed_search_logs_overlap_jaccard_top1_and_score_shift(served, tmp_path):
    log = tmp_path / "shadow.jsonl"
    store, app = _app(served, log, queue=64)
    answers = {}
    try:
        with TestClient(app) as client:
            for query in QUERIES:
                body = client.post("/search", json={"query": query, "k": 5}).json()
                assert body["version"] == "base"
                answers[query] = body
            client.post("/search", json={"query": "dns ttl", "k": 5, "model_version": "cls"})  # not shadowed
        lines = [json.loads(line) for line in log.read_text().splitlines()]  # the worker drained at shutdown
        assert [line["query"] for line in lines] == QUERIES
        for line in lines:
            vector = served.encoders["cls"].encode([line["query"]])[0].tolist()
            want = [h.id for h in store.search(SearchQuery(vector=vector, k=5, version="cls"))]
            prod = [h["id"] for h in answers[line["query"]]["hits"]]
            assert line["shadow_ids"] == want and line["production_ids"] == prod
            overlap, jaccard, top1 = list_agreement(prod, want, 5)
            assert (line["overlap"], line["jaccard"]) == (round(overlap, 6), round(jaccard, 6))
            assert line["top1_agree"] is top1
            assert line["production"] == "base" and line["shadow"] == "cls" and line["top1_shift"] is not None
        assert any(line["overlap"] < 1.0 for line in lines)  # two real models do not agree everywhere
    finally:
        store.close()


def test_a_stalled_shadow_with_a_queue_of_one_drops_and_requests_do_not_wait(served, tmp_path):
    log = tmp_path / "shadow.jsonl"
    store, app = _app(served, log, queue=1)
    shadow_lock = served.encoders["cls"]._lock  # the shadow's encoder: held, its worker is stuck in a real encode
    try:
        with TestClient(app) as client:
            shadow_lock.acquire()
            try:
                results = [client.post("/search", json={"query": q, "k": 5}) for q in QUERIES]
                info = client.get("/info").json()["shadow"]
                metrics = client.get("/metrics").text
            finally:
                shadow_lock.release()
            assert [r.status_code for r in results] == [200] * len(QUERIES)
            assert [r.json()["version"] for r in results] == ["base"] * len(QUERIES)
            assert info["queue_size"] == 1 and info["dropped"] >= len(QUERIES) - 2 and info["searched"] == 0
            assert f"domainfit_shadow_dropped_total {float(info['dropped'])}" in metrics
        lines = log.read_text().splitlines()
        assert len(lines) == len(QUERIES) - info["dropped"] >= 1  # what was queued was shadowed once released
    finally:
        store.close()
