"""The search service in process (Starlette's TestClient) over a real LanceDB index and the real MiniLM.

Search modes, filters, versions, fields and score floors against the backend's
own answers; /embed against the model; /health, /info, /metrics; the bearer
token (checked before the body is read); every cap; every error as JSON
``{error, error_type}``; the query log's format.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from domainfit.core.errors import UsageError
from domainfit.index.backend import SearchQuery, open_index
from domainfit.serve.app import create_app
from domainfit.serve.auth import check_bind, is_loopback, load_token_digest, token_digest
from domainfit.serve.config import ServeConfig
from domainfit.serve.querylog import QueryLog
from domainfit.serve.service import Served
from serve_support import TOKEN, build_served_index, topic_of

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SMALL = ServeConfig(max_k=20, max_query_chars=200, max_batch=4, max_body_bytes=4096, max_filters=2)


@pytest.fixture(scope="module")
def served(tmp_path_factory, minilm):
    return build_served_index(tmp_path_factory.mktemp("serve-app"), minilm)


@pytest.fixture(scope="module")
def backend(served):
    store, _ = open_index(served.index)
    yield store
    store.close()


def make_app(backend, served, settings=SMALL, *, threshold=None, token=None, query_log=None, mode="dense"):
    thresholds = {"base": threshold} if threshold is not None else {}
    spec = Served(version="base", model=MODEL, mode=mode, thresholds=thresholds, tag="prod")
    digest = token_digest(token) if token else None
    return create_app(backend, served.encoders, spec, settings, token_digest=digest, query_log=query_log)


@pytest.fixture(scope="module")
def client(backend, served):
    with TestClient(make_app(backend, served), raise_server_exceptions=False) as c:
        yield c


def assert_error(response, status, error_type):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type"}, body
    assert body["error_type"] == error_type and body["error"], body


def direct(backend, served, query, mode, version="base", k=10, filters=None):
    encoder = served.encoders[version]
    vector = encoder.encode([query])[0].tolist() if mode != "bm25" else None
    q = SearchQuery(text=query, vector=vector, mode=mode, k=k, version=version, filters=filters or {})
    return [(h.id, h.score) for h in backend.search(q)]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_mode_returns_what_the_backend_returns(client, backend, served, mode):
    response = client.post("/search", json={"query": "reset password link", "mode": mode, "k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    got = [(h["id"], h["score"]) for h in body["hits"]]
    want = direct(backend, served, "reset password link", mode, k=5)
    assert [i for i, _ in got] == [i for i, _ in want]
    assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-6)
    assert got[0][0] == "d002"  # the reset-password document
    assert body["mode"] == mode and body["version"] == "base" and body["k"] == 5
    scores = [s for _, s in got]
    assert scores == sorted(scores, reverse=True)


def test_hybrid_is_rrf_with_k_60(client):
    body = client.post("/search", json={"query": "reset password link", "mode": "hybrid", "k": 3}).json()
    # d002 is first in both lists: 2 / (60 + 1)
    assert body["hits"][0]["id"] == "d002"
    assert body["hits"][0]["score"] == pytest.approx(2 / 61)


def test_filters_and_fields(client):
    response = client.post(
        "/search",
        json={"query": "invoice", "k": 20, "filters": {"topic": ["billing", "storage"]}, "fields": ["title", "topic"]},
    )
    hits = response.json()["hits"]
    assert len(hits) == 8  # four billing and four storage documents
    assert {h["fields"]["topic"] for h in hits} == {"billing", "storage"}
    assert all(h["fields"]["topic"] == topic_of(h["id"]) and h["fields"]["title"] for h in hits)
    one = client.post("/search", json={"query": "invoice", "filters": {"topic": "billing", "rank": 4}}).json()["hits"]
    assert [h["id"] for h in one] == ["d005"]
    bm25 = client.post("/search", json={"query": "invoice", "mode": "bm25", "filters": {"topic": "network"}}).json()
    assert bm25["hits"] == []  # no network document mentions invoices


def test_model_versions_search_their_own_vectors(client, backend, served):
    base = client.post("/search", json={"query": "spot instance interruption", "k": 8}).json()
    other = client.post("/search", json={"query": "spot instance interruption", "k": 8, "model_version": "cls"}).json()
    assert other["version"] == "cls"
    want = direct(backend, served, "spot instance interruption", "dense", version="cls", k=8)
    assert [h["id"] for h in other["hits"]] == [i for i, _ in want]
    assert [h["score"] for h in base["hits"]] != [h["score"] for h in other["hits"]]
    assert_error(client.post("/search", json={"query": "x", "model_version": "nope"}), 404, "NotFound")


def test_calibrated_threshold_is_the_default_floor_and_empty_results_are_counted(backend, served):
    with TestClient(make_app(backend, served, threshold=0.999)) as c:
        empty = c.post("/search", json={"query": "reset password link"}).json()
        assert empty["hits"] == [] and empty["min_score"] == pytest.approx(0.999)
        below = c.post("/search", json={"query": "reset password link", "min_score": 0.5}).json()
        assert [h["id"] for h in below["hits"]] == ["d002"] and below["min_score"] == 0.5
        hybrid = c.post("/search", json={"query": "reset password link", "mode": "hybrid"}).json()
        assert len(hybrid["hits"]) == 10 and hybrid["min_score"] is None  # a cosine floor means nothing for RRF
        assert c.get("/info").json()["threshold"] == pytest.approx(0.999)
        metrics = c.get("/metrics").text
    assert 'domainfit_search_empty_results_total{mode="dense",version="base"} 1.0' in metrics
    assert 'domainfit_searches_total{mode="dense",version="base"} 2.0' in metrics
    assert 'domainfit_search_empty_results_total{mode="hybrid"' not in metrics


def test_embed_matches_the_model_and_the_tei_shape(client, minilm):
    one = client.post("/embed", json={"inputs": "reset password link"})
    assert one.status_code == 200
    vectors = one.json()
    assert len(vectors) == 1 and len(vectors[0]) == 384
    want = minilm.encode(["reset password link"], normalize_embeddings=True)[0]
    assert np.allclose(vectors[0], want, atol=1e-5)
    raw = client.post("/embed", json={"inputs": ["reset password link", "vpc"], "normalize": False}).json()
    # MiniLM ends in a Normalize module, so its raw output is unit length as well
    assert np.allclose(raw, minilm.encode(["reset password link", "vpc"], normalize_embeddings=False), atol=1e-5)
    assert_error(client.post("/embed", json={"inputs": "x", "prompt_name": "no-such-prompt"}), 422, "Validation")
    assert_error(client.post("/embed", json={"inputs": []}), 422, "Validation")


def test_health_and_info(client):
    assert client.get("/health").json() == {"status": "ok", "documents": 30}
    info = client.get("/info").json()
    assert info["model_id"] == MODEL and info["version"] == "base" and info["dimension"] == 384
    assert info["documents"] == 30 and info["threshold"] is None and info["tag"] == "prod"
    assert {v["version"]: v["dimension"] for v in info["versions"]} == {"base": 384, "cls": 384}
    assert info["limits"]["max_k"] == 20 and info["limits"]["max_client_batch_size"] == 4
    assert info["auth"] is False


def test_each_cap(client):
    assert_error(client.post("/search", json={"query": "x", "k": 21}), 422, "Validation")
    assert client.post("/search", json={"query": "x", "k": 20}).status_code == 200
    assert_error(client.post("/search", json={"query": "x" * 201}), 422, "Validation")
    assert client.post("/search", json={"query": "x" * 200}).status_code == 200
    three = {"a": 1, "b": 2, "c": 3}
    assert_error(client.post("/search", json={"query": "x", "filters": three}), 422, "Validation")
    assert_error(client.post("/embed", json={"inputs": ["a"] * 5}), 413, "PayloadTooLarge")
    assert client.post("/embed", json={"inputs": ["a"] * 4}).status_code == 200
    assert_error(client.post("/embed", json={"inputs": ["x" * 201]}), 422, "Validation")
    big = json.dumps({"query": "x", "fields": ["title"], "pad": "y" * 5000}).encode()
    assert_error(client.post("/search", content=big, headers={"content-type": "application/json"}), 413,
                 "PayloadTooLarge")  # fmt: skip

    def chunks():  # no Content-Length: the body is counted as it streams
        yield b'{"query": "'
        for _ in range(10):
            yield b"z" * 1000
        yield b'"}'

    streamed = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert_error(streamed, 413, "PayloadTooLarge")


def test_every_request_error_is_json(client):
    assert_error(client.post("/search", content=b"{not json", headers={"content-type": "application/json"}), 422,
                 "Validation")  # fmt: skip
    assert_error(client.post("/search", json={"k": 3}), 422, "Validation")
    assert_error(client.post("/search", json={"query": "x", "top_k": 3}), 422, "Validation")
    assert_error(client.post("/search", json={"query": "x", "mode": "fuzzy"}), 422, "Validation")
    assert_error(client.post("/search", json={"query": "   "}), 422, "Validation")
    assert_error(client.post("/search", json={"query": "x", "filters": {"topic": 3}}), 422, "Validation")
    assert_error(client.post("/search", json={"query": "x", "filters": {"nope": 1}}), 422, "Validation")
    assert_error(client.post("/search", json={"query": "x", "fields": ["vec_base"]}), 422, "Validation")
    assert_error(client.post("/search", content=b'{"query": "x", "min_score": NaN}',
                             headers={"content-type": "application/json"}), 422, "Validation")  # fmt: skip
    assert_error(client.get("/nope"), 404, "NotFound")
    assert_error(client.get("/search"), 405, "MethodNotAllowed")


def test_metrics_count_requests_and_latency(backend, served):
    with TestClient(make_app(backend, served, token=TOKEN)) as c:
        c.post("/search", json={"query": "x"}, headers={"Authorization": f"Bearer {TOKEN}"})
        c.post("/search", json={"query": "x"})
        c.post("/search", json={"query": "x", "k": 1000}, headers={"Authorization": f"Bearer {TOKEN}"})
        text = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert 'domainfit_requests_total{endpoint="/search",method="POST",status="200"} 1.0' in text
    assert 'domainfit_requests_total{endpoint="/search",method="POST",status="401"} 1.0' in text
    assert 'domainfit_requests_total{endpoint="/search",method="POST",status="422"} 1.0' in text
    assert 'domainfit_request_duration_seconds_count{endpoint="/search"} 3.0' in text
    assert "domainfit_index_documents 30.0" in text


def test_token_missing_wrong_malformed_and_right(backend, served):
    with TestClient(make_app(backend, served, token=TOKEN)) as c:
        missing = c.post("/search", json={"query": "x"})
        assert_error(missing, 401, "Unauthorized")
        assert missing.headers["www-authenticate"] == "Bearer"
        assert_error(c.post("/search", json={"query": "x"}, headers={"Authorization": "Bearer wrong-token"}), 401,
                     "Unauthorized")  # fmt: skip
        assert_error(c.get("/health", headers={"Authorization": f"Basic {TOKEN}"}), 401, "Unauthorized")
        assert_error(c.get("/info", headers={"Authorization": f"Bearer {TOKEN}x"}), 401, "Unauthorized")
        ok = c.post("/search", json={"query": "reset password"}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.json()["hits"][0]["id"] == "d002"
        assert c.get("/info", headers={"Authorization": f"bearer {TOKEN}"}).json()["auth"] is True


def test_token_is_checked_before_the_body_is_read(backend, served):
    app = make_app(backend, served, token=TOKEN)
    received: list[str] = []
    sent: list[dict] = []

    async def receive():
        received.append("body")
        return {"type": "http.request", "body": b'{"query": "x"}', "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/search",
        "raw_path": b"/search",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"14")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401 and received == []
    sent.clear()
    scope["headers"] = [*scope["headers"], (b"authorization", f"Bearer {TOKEN}".encode())]
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200 and received == ["body"]


def test_the_token_is_kept_only_as_its_hash(backend, served, tmp_path, monkeypatch):
    app = make_app(backend, served, token=TOKEN)
    assert TOKEN not in repr(vars(app.state)) and TOKEN.encode() not in token_digest(TOKEN)
    monkeypatch.setenv("DOMAINFIT_TEST_TOKEN", TOKEN)
    assert load_token_digest(None, "DOMAINFIT_TEST_TOKEN") == token_digest(TOKEN)
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert load_token_digest(path, "DOMAINFIT_UNSET_VARIABLE") == token_digest(TOKEN)
    path.write_text("short\n")
    with pytest.raises(UsageError, match="at least 16"):
        load_token_digest(path, "DOMAINFIT_UNSET_VARIABLE")
    assert load_token_digest(None, "DOMAINFIT_UNSET_VARIABLE") is None


def test_which_addresses_need_a_token():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("example.org")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", token_digest(TOKEN))
    with pytest.raises(UsageError, match="bearer token"):
        check_bind("0.0.0.0", None)


def test_query_log_lines(backend, served, tmp_path):
    path = tmp_path / "logs" / "queries.jsonl"
    with TestClient(make_app(backend, served, query_log=QueryLog(path), threshold=0.999)) as c:
        hits = c.post("/search", json={"query": "reset password link", "mode": "bm25", "k": 2}).json()["hits"]
        c.post("/search", json={"query": "reset password link", "filters": {"topic": "auth"}})
        c.post("/search", json={"query": "x", "k": 1000})  # refused: not logged
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert list(first) == ["format_version", "time", "query", "mode", "version", "k", "min_score", "filters", "ids",
                           "scores", "latency_ms"]  # fmt: skip
    assert first["format_version"] == 1 and first["time"].endswith("Z") and first["mode"] == "bm25"
    assert first["ids"] == [h["id"] for h in hits] and first["scores"] == pytest.approx([h["score"] for h in hits])
    assert first["latency_ms"] > 0 and first["min_score"] is None and first["filters"] is None
    assert second["ids"] == [] and second["min_score"] == pytest.approx(0.999)
    assert second["filters"] == {"topic": "auth"}


def test_the_service_does_not_write_the_index(client, served):
    before = sorted((p.relative_to(served.index), p.stat().st_size) for p in served.index.rglob("*") if p.is_file())
    paths = set(client.app.openapi()["paths"])
    assert paths == {"/search", "/embed", "/health", "/info", "/metrics"}
    for _ in range(3):
        client.post("/search", json={"query": "reset password", "mode": "hybrid"})
        client.post("/embed", json={"inputs": ["a"]})
    after = sorted((p.relative_to(served.index), p.stat().st_size) for p in served.index.rglob("*") if p.is_file())
    assert after == before


def test_a_version_without_an_encoder_is_refused(backend, served):
    only_base = {"base": served.encoders["base"]}
    spec = Served(version="base", model=MODEL)
    with TestClient(create_app(backend, only_base, spec, SMALL)) as c:
        assert_error(c.post("/search", json={"query": "x", "model_version": "cls"}), 422, "Validation")
        bm25 = c.post("/search", json={"query": "invoice", "model_version": "cls", "mode": "bm25"})
        assert bm25.status_code == 200  # BM25 needs no encoder
    with pytest.raises(UsageError, match="not in the index"):
        create_app(backend, only_base, Served(version="other", model=MODEL), SMALL)


def test_the_openapi_contract_holds_and_nothing_is_a_server_error(backend, served):
    """Schemathesis over the app's own OpenAPI schema, in process, ten bounded examples per operation.

    Every check but one holds: no 5xx; statuses, content types, headers and bodies as documented. Not
    ``positive_data_acceptance``: the schema cannot say which filter keys, fields and model versions a given
    index holds, so a well-formed request naming others is rightly refused (404/422), as is an /embed batch
    over its cap (413, text-embeddings-inference's status).
    """
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_app(backend, served, threshold=0.3))
    calls: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def check(case):
            case.call_and_validate(excluded_checks=[positive_data_acceptance])
            calls[case.operation.label] = calls.get(case.operation.label, 0) + 1

        check()
    assert set(calls) == {"POST /search", "POST /embed", "GET /health", "GET /info", "GET /metrics"}
    assert all(n >= 1 for n in calls.values())


def test_an_existing_file_that_is_not_our_log_is_refused(tmp_path):
    """The query and shadow logs append only to a domainfit log of their kind (a folder or another file: exit 2)."""
    from domainfit.cli.serve import check_query_log, shadow_log_path
    from domainfit.core.errors import InputError

    assert check_query_log(tmp_path / "new.jsonl") == tmp_path / "new.jsonl"
    other = tmp_path / "notes.txt"
    other.write_text("my notes\n")
    for bad in (tmp_path, other):
        with pytest.raises(InputError):
            check_query_log(bad)
        with pytest.raises(InputError):
            shadow_log_path(str(bad), None)
    ours = tmp_path / "q.jsonl"
    ours.write_text('{"format_version": 1, "query": "x"}\n')
    assert check_query_log(ours) == ours
    with pytest.raises(InputError):
        shadow_log_path(str(ours), None)  # a query log is not a shadow log
    assert shadow_log_path(None, ours) == tmp_path / "q.shadow.jsonl"
