"""The search service over either backend: LanceDB and Qdrant (local mode) serve alike.

One suite, parametrised over the two stores (each a real folder in a workspace
index with its production pointer, opened as ``domainfit serve`` opens it), in
process through Starlette's TestClient: every mode returns what its backend
returns, filters and versions behave the same, a filter value of the wrong type
is a 422 naming the field and both types, and a version stored as compress's
int8 is searched with compress's own int8 scores. Then the two backends answer
the same dense searches with the same ids and scores.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from domainfit.compress.pipeline import build_index
from domainfit.compress.spec import parse_spec
from domainfit.index.backend import SearchQuery, open_index, read_pointer
from domainfit.serve.app import create_app
from domainfit.serve.config import ServeConfig
from domainfit.serve.service import Served
from serve_support import build_served_index, topic_of

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SETTINGS = ServeConfig(max_k=30, max_filters=3)
BACKENDS = ("lancedb", "qdrant")


@pytest.fixture(scope="module")
def indexes(tmp_path_factory, minilm):
    return {b: build_served_index(tmp_path_factory.mktemp(f"serve-{b}"), minilm, backend=b, quantised=True)
            for b in BACKENDS}  # fmt: skip


@pytest.fixture(scope="module")
def apps(indexes):
    """One client per backend over its index opened for reading at the pointer's tag (as ``serve`` opens it)."""
    opened = {}
    for name, served in indexes.items():
        store, pointer = open_index(served.index)
        assert pointer.backend == name
        spec = Served(version="base", model=MODEL, tag=pointer.tag, backend=pointer.backend)
        client = TestClient(create_app(store, served.encoders, spec, SETTINGS), raise_server_exceptions=False)
        opened[name] = (client.__enter__(), store)
    yield opened
    for client, store in opened.values():
        client.__exit__(None, None, None)
        store.close()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


def search(apps, backend, **body):
    response = apps[backend][0].post("/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_mode_returns_what_its_backend_returns(apps, indexes, backend, mode):
    body = search(apps, backend, query="reset password link", mode=mode, k=5)
    store = apps[backend][1]
    vector = indexes[backend].encoders["base"].encode(["reset password link"])[0].tolist()
    direct = store.search(SearchQuery(text="reset password link", vector=vector, mode=mode, k=5, version="base"))
    assert [h["id"] for h in body["hits"]] == [h.id for h in direct]
    assert [h["score"] for h in body["hits"]] == pytest.approx([h.score for h in direct], abs=1e-6)
    assert body["hits"][0]["id"] == "d002"


def test_filters_fields_and_versions(apps, backend):
    hits = search(apps, backend, query="invoice", k=20, filters={"topic": ["billing", "storage"]},
                  fields=["title", "topic"])["hits"]  # fmt: skip
    assert len(hits) == 8 and all(h["fields"]["topic"] == topic_of(h["id"]) for h in hits)
    one = search(apps, backend, query="invoice", filters={"topic": "billing", "rank": 4})["hits"]
    assert [h["id"] for h in one] == ["d005"]
    other = search(apps, backend, query="spot instance interruption", k=8, model_version="cls")
    assert other["version"] == "cls" and len(other["hits"]) == 8
    info = apps[backend][0].get("/info").json()
    assert info["backend"] == backend
    precisions = {v["version"]: v["precision"] for v in info["versions"]}
    assert precisions == {"base": "full/float32", "cls": "full/float32", "int8": "trunc-384/int8"}


def test_a_filter_value_of_the_wrong_type_is_a_422_naming_the_field(apps, backend):
    client = apps[backend][0]
    for filters, words in [({"rank": "four"}, ("'rank'", "integer", "text")),
                           ({"topic": 3}, ("'topic'", "text", "integer")),
                           ({"topic": ["auth", True]}, ("'topic'", "text", "boolean"))]:  # fmt: skip
        for mode in ("dense", "bm25", "hybrid"):
            response = client.post("/search", json={"query": "invoice", "mode": mode, "filters": filters})
            assert response.status_code == 422, response.text
            body = response.json()
            assert set(body) == {"error", "error_type"} and body["error_type"] == "Validation"
            assert all(word in body["error"] for word in words), body
    unknown = client.post("/search", json={"query": "invoice", "filters": {"nope": 1}})
    assert unknown.status_code == 422 and "not a metadata field" in unknown.json()["error"]


def test_an_int8_version_is_searched_with_compress_scores(apps, indexes, backend):
    served = indexes[backend]
    texts = [d.embed_text() for d in served.docs]
    docs = served.encoders["base"].encode(texts)
    query = "storage bucket lifecycle rules"
    q = served.encoders["base"].encode([query])
    ids, scores = build_index(parse_spec("full/int8", docs.shape[1]), docs).search(q, 10)
    body = search(apps, backend, query=query, k=10, model_version="int8")
    assert [h["id"] for h in body["hits"]] == [served.docs[i].id for i in ids[0]]
    assert [h["score"] for h in body["hits"]] == pytest.approx(scores[0].tolist(), abs=1e-5)


def test_both_backends_answer_dense_searches_alike(apps, indexes):
    for query in ("reset password link", "invoice overdue", "spot instance interruption"):
        for version in ("base", "cls", "int8"):
            found = {b: search(apps, b, query=query, k=10, model_version=version)["hits"] for b in BACKENDS}
            assert [h["id"] for h in found["lancedb"]] == [h["id"] for h in found["qdrant"]], (query, version)
            np.testing.assert_allclose([h["score"] for h in found["lancedb"]],
                                       [h["score"] for h in found["qdrant"]], atol=1e-5)  # fmt: skip
    assert read_pointer(indexes["qdrant"].index).backend == "qdrant"
