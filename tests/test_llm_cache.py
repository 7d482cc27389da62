"""The LLM reply cache keys on the whole request body and never keeps or serves a reply cut off by max_tokens."""

from __future__ import annotations

import json

import pytest

from domainfit.core.types import Document
from domainfit.mine.llm_negatives import LLMNegativeGenerator
from domainfit.synth.config import LLMConfig, LLMNegativesConfig
from domainfit.synth.llm import LLMQueryGenerator
from domainfit.synth.llm_client import ChatClient, ResponseCache
from test_mine_llm import negatives_reply
from test_synth_llm import DOCS, FakeOpenAI, completion, default_reply


@pytest.fixture()
def server():
    fake = FakeOpenAI()
    yield fake
    fake.close()


def config(server, **overrides):
    values = {"base_url": server.url, "model": "test-model", "backoff": 0.01, "max_backoff": 1.0, "timeout": 5.0}
    return LLMConfig(**{**values, **overrides})


def cut_off_reply(body):
    """A reply that stopped at max_tokens: the last query is half written."""
    _, _, text = default_reply(body)
    content = json.loads(text)["choices"][0]["message"]["content"].rsplit(" ", 1)[0]
    return 200, {}, json.dumps(completion(content, finish="length"))


def cache_files(folder):
    return sorted(folder.rglob("*.json"))


def test_changing_max_tokens_misses_the_cache(server, tmp_path):
    cache = tmp_path / "cache"
    LLMQueryGenerator(config(server, max_tokens=200), cache).generate(DOCS)
    assert len(server.requests) == 3
    again = LLMQueryGenerator(config(server, max_tokens=200), cache)
    again.generate(DOCS)
    assert len(server.requests) == 3 and again.usage.cached == 3  # same settings: served from the cache
    longer = LLMQueryGenerator(config(server, max_tokens=400), cache)
    longer.generate(DOCS)
    assert len(server.requests) == 6 and longer.usage.requests == 3 and longer.usage.cached == 0
    assert {r["body"]["max_tokens"] for r in server.requests[3:]} == {400}


def test_changing_max_tokens_of_llm_negatives_misses_the_cache(server, tmp_path):
    server.respond = negatives_reply
    base = {"base_url": server.url, "model": "test-model", "backoff": 0.01, "timeout": 5.0}
    pairs = [("reset password", "Open Settings > Security and request a reset link by email.")]
    LLMNegativeGenerator(LLMNegativesConfig(**base, max_tokens=800), tmp_path / "cache").generate(pairs)
    LLMNegativeGenerator(LLMNegativesConfig(**base, max_tokens=800), tmp_path / "cache").generate(pairs)
    assert len(server.requests) == 1
    LLMNegativeGenerator(LLMNegativesConfig(**base, max_tokens=100), tmp_path / "cache").generate(pairs)
    assert len(server.requests) == 2


def test_the_key_is_the_body_sent(server, tmp_path):
    """The cache file is named by the hash of the exact body the endpoint received (every field of it)."""
    client = ChatClient(config(server, system="You write search queries."), tmp_path / "cache")
    client.complete(client.messages("Document:\nalpha beta"), 3, "doc")
    (sent,) = [r["body"] for r in server.requests]
    (stored,) = cache_files(tmp_path / "cache")
    assert stored.stem == ResponseCache.request_key(sent, 3)


@pytest.mark.parametrize(
    "change",
    [
        {"max_tokens": 201},
        {"top_p": 0.9},
        {"seed": 7},
        {"stop": ["\n\n"]},
        {"response_format": {"type": "json_object"}},
        {"n": 2},
        {"temperature": 0.2},
        {"model": "other-model"},
        {"messages": [{"role": "user", "content": "other"}]},
    ],
)
def test_every_body_field_changes_the_key(change):
    body = {"model": "m", "messages": [{"role": "user", "content": "p"}], "temperature": 0.7, "max_tokens": 200}
    key = ResponseCache.request_key(body, 3)
    assert key == ResponseCache.request_key(dict(reversed(list(body.items()))), 3)  # canonical: order-free
    assert ResponseCache.request_key({**body, **change}, 3) != key
    assert ResponseCache.request_key(body, 4) != key  # the items the prompt asks for


def test_a_cut_off_reply_is_not_cached_and_is_asked_again(server, tmp_path):
    server.respond = cut_off_reply
    cache = tmp_path / "cache"
    first = LLMQueryGenerator(config(server), cache)
    queries = first.generate(DOCS)
    # the half-written last query is dropped
    assert [q.text for q in queries if q.doc_id == "d1"] == ["login query one", "login second query"]
    assert cache_files(cache) == []
    second = LLMQueryGenerator(config(server), cache)
    second.generate(DOCS)
    assert len(server.requests) == 6 and second.usage.requests == 3 and second.usage.cached == 0
    server.respond = default_reply  # the endpoint now answers in full: that reply is cached
    LLMQueryGenerator(config(server), cache).generate(DOCS)
    assert len(cache_files(cache)) == 3


def test_an_old_cut_off_entry_is_not_served(server, tmp_path):
    cache = tmp_path / "cache"
    LLMQueryGenerator(config(server), cache).generate(DOCS)
    for path in cache_files(cache):  # as an older version stored them: cut-off replies kept
        entry = json.loads(path.read_text())
        entry["response"]["choices"][0]["finish_reason"] = "length"
        path.write_text(json.dumps(entry))
    again = LLMQueryGenerator(config(server), cache)
    queries = again.generate(DOCS)
    assert len(server.requests) == 6 and again.usage.cached == 0
    assert len(queries) == 9  # the fresh, complete replies
    stored = [json.loads(p.read_text())["response"]["choices"][0]["finish_reason"] for p in cache_files(cache)]
    assert stored == ["stop"] * 3


def test_a_damaged_cache_entry_is_a_miss(server, tmp_path):
    cache = tmp_path / "cache"
    docs = [Document("d9", "Gamma delta epsilon.", title="G")]
    LLMQueryGenerator(config(server), cache).generate(docs)
    (path,) = cache_files(cache)
    path.write_text(json.dumps({"format_version": 1, "model": "test-model", "response": {"choices": []}}))
    again = LLMQueryGenerator(config(server), cache)
    assert [q.text for q in again.generate(docs)] == ["gamma query one", "gamma second query", "gamma third"]
    assert again.usage.requests == 1
