"""The ``llm`` negative source of ``mine`` against a local OpenAI-compatible chat-completions server."""

from __future__ import annotations

import json

import pytest

from domainfit.config import load_config
from domainfit.core.errors import DomainfitError
from domainfit.core.workspace import Workspace
from domainfit.mine.config import MineConfig
from domainfit.mine.llm_negatives import LLMNegativeGenerator, generated_id, parse_passages
from domainfit.stages.mine import run_mine
from domainfit.synth.config import LLMNegativesConfig
from test_synth_llm import FakeOpenAI, completion

SETTINGS = {"range_min": 1, "range_max": 25, "negatives": 3, "sources": ["llm", "random"]}


def parts(body):
    """Return (query, positive) from the default negatives prompt of a request."""
    prompt = body["messages"][-1]["content"]
    query = prompt.split("Query: ", 1)[1].split("\n", 1)[0]
    positive = prompt.split("Answer passage:\n", 1)[1].split("\n\nPassages:", 1)[0]
    return query, positive


def negatives_reply(body):
    """A preamble, a verbatim copy of the positive (a false negative) and two off-target passages."""
    query, positive = parts(body)
    content = (
        "Here are the passages:\n\n"
        f"1. {positive}\n\n"
        f"2. The cafeteria serves soup on Mondays; this note about {query} desks is about office plants only.\n\n"
        f"3. Parking permits for the {query} team are renewed every January at the reception desk downstairs."
    )
    return 200, {}, json.dumps(completion(content, prompt_tokens=50, completion_tokens=40))


@pytest.fixture()
def server():
    fake = FakeOpenAI()
    fake.respond = negatives_reply
    yield fake
    fake.close()


def mine_config(server, **overrides):
    llm = {"base_url": server.url, "model": "test-model", "backoff": 0.01, "max_backoff": 1.0, "timeout": 5.0}
    return MineConfig(**{**SETTINGS, "llm": llm, **overrides})


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_generated_negatives_fill_the_dataset_and_copies_of_the_positive_are_filtered(
    server, tmp_path, mini_beir, minilm
):
    from datasets import load_from_disk

    ws = Workspace(tmp_path / "ws")
    result = run_mine(mini_beir, ws, mine_config(server), bi_encoder=minilm)
    dataset = load_from_disk(str(ws.root / "mine" / "dataset"))
    records = read_jsonl(ws.root / "mine" / "negatives.jsonl")
    assert dataset.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    assert len(records) == len(dataset) == result.n_examples > 0
    llm_seen = 0
    for row, record in zip(dataset, records, strict=True):
        cells = [row[f"negative_{k}"] for k in (1, 2, 3)]
        assert row["positive"] not in cells  # the verbatim copy never becomes a negative
        for cell, negative in zip(cells, record["negatives"], strict=True):
            if negative["source"] == "llm":
                llm_seen += 1
                assert negative["text"] == cell and negative["doc_id"] == generated_id(cell)
                assert negative["doc_id"].startswith("llm:") and len(negative["doc_id"]) == 16
                assert ("cafeteria" in cell or "Parking permits" in cell) and record["query"] in cell
            else:
                assert "text" not in negative and not negative["doc_id"].startswith("llm:")
    assert llm_seen == result.negatives_per_source["llm"] == 2 * result.n_examples
    stats = result.sources["llm"]
    n_requests = len(server.requests)
    assert stats["retrieved"] == 3 * n_requests  # the preamble is not a passage
    assert stats["duplicate"] == n_requests  # one copy of the positive per pair
    assert result.llm["requests"] == n_requests and result.llm["passages"] == 3 * n_requests
    assert result.llm["prompt_tokens"] == 50 * n_requests and result.llm["cached"] == 0
    summary = json.loads((ws.root / "mine" / "summary.json").read_text())
    assert summary["sources"]["llm"] == stats and summary["llm"]["completion_tokens"] == 40 * n_requests
    body = server.requests[0]["body"]
    assert body["model"] == "test-model" and "3 different passages" in body["messages"][-1]["content"]


def test_margin_filter_drops_generated_passages_as_similar_as_the_positive(server, tmp_path, mini_beir, minilm):
    def paraphrase(body):
        query, positive = parts(body)
        text = f"{positive.rstrip('.')} today, as described.\n\nParking permits for the {query} team renew in January."
        return 200, {}, json.dumps(completion(text))

    server.respond = paraphrase
    config = mine_config(server, negatives=1, sources=["llm"], drop_duplicates=False, relative_margin=0.2)
    result = run_mine(mini_beir, Workspace(tmp_path / "ws"), config, bi_encoder=minilm)
    assert result.sources["llm"]["margin_relative"] >= len(server.requests)
    records = read_jsonl(tmp_path / "ws" / "mine" / "negatives.jsonl")
    assert all("Parking permits" in r["negatives"][0]["text"] for r in records)


def test_rerun_reads_every_reply_from_the_cache(server, tmp_path, mini_beir, minilm):
    ws = Workspace(tmp_path / "ws")
    first = run_mine(mini_beir, ws, mine_config(server), bi_encoder=minilm)
    sent = len(server.requests)
    before = (ws.root / "mine" / "negatives.jsonl").read_bytes()
    again = run_mine(mini_beir, ws, mine_config(server), bi_encoder=minilm, force=True)
    assert len(server.requests) == sent  # nothing new was sent
    assert again.llm["requests"] == 0 and again.llm["cached"] == first.llm["requests"] == sent
    assert again.llm["cost_usd"] == 0
    assert (ws.root / "mine" / "negatives.jsonl").read_bytes() == before
    assert len(list((ws.cache_dir / "llm").rglob("*.json"))) == sent


def test_malformed_reply_is_a_clear_error_and_writes_nothing(server, tmp_path, mini_beir, minilm):
    calls = {"n": 0}

    def sometimes_broken(body):
        calls["n"] += 1
        return (200, {}, json.dumps({"choices": []})) if calls["n"] == 2 else negatives_reply(body)

    server.respond = sometimes_broken
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(DomainfitError, match=r"pair \d+ \(query '[^']+'\): malformed reply .*no choices"):
        run_mine(mini_beir, ws, mine_config(server, llm={"base_url": server.url, "concurrency": 1}), bi_encoder=minilm)
    assert not (ws.root / "mine").exists()
    assert not [p for p in ws.root.iterdir() if p.name.startswith(".mine")]
    cached = list((ws.cache_dir / "llm").rglob("*.json"))
    assert len(cached) == calls["n"] - 1  # only the good replies, each complete
    assert all(json.loads(p.read_text())["response"]["choices"] for p in cached)


def test_llm_source_without_an_endpoint_is_a_config_error(tmp_path):
    with pytest.raises(ValueError, match=r"sources include 'llm' but no LLM endpoint .*mine\.llm\.base_url"):
        MineConfig(sources=["llm", "dense"])
    assert MineConfig(sources=["dense"], llm={"base_url": "http://127.0.0.1:9/v1"}).mining_settings().enabled() == [
        "dense"
    ]
    toml = tmp_path / "domainfit.toml"
    toml.write_text('[mine]\nsources = ["llm"]\n')
    with pytest.raises(DomainfitError, match=r"mine\.llm\.base_url"):
        load_config(toml)
    toml.write_text('[mine]\nsources = ["llm", "bm25"]\n\n[mine.llm]\nbase_url = "http://127.0.0.1:9/v1"\n')
    cfg = load_config(toml)
    assert cfg.mine.llm.base_url == "http://127.0.0.1:9/v1"
    assert cfg.mine.mining_settings().quotas() == {"llm": 2, "bm25": 2}
    with pytest.raises(ValueError, match=r"\{query\} and \{positive\}"):
        LLMNegativesConfig(prompt="write {n} passages")


def test_parse_passages_blocks_lines_labels_and_truncation():
    reply = 'Here are 3 passages:\n\nPassage 1: First wrong\nanswer text.\n\n2) "Second wrong one."\n\n- Third cut'
    assert parse_passages(reply, 5) == ["First wrong answer text.", "Second wrong one.", "Third cut"]
    assert parse_passages(reply, 5, truncated=True) == ["First wrong answer text.", "Second wrong one."]
    assert parse_passages(reply, 1) == ["First wrong answer text."]
    assert parse_passages("1. one two three\n2. four five six\n3. ONE two three!", 5) == [
        "one two three",
        "four five six",
    ]
    assert parse_passages("too short\n\na passage long enough to keep", 5, min_words=3) == [
        "a passage long enough to keep"
    ]


def test_generator_sends_identical_requests_once(server, tmp_path):
    gen = LLMNegativeGenerator(LLMNegativesConfig(base_url=server.url, passages_per_pair=2), tmp_path / "c")
    out = gen.generate([("reset password", "Open the security page."), ("reset password", "Open the security page.")])
    assert len(server.requests) == 1 and out[0] == out[1] and len(out[0]) == 2
    assert gen.get_config_dict()["api_key_found"] in (True, False) and "api_key" not in gen.get_config_dict()


def test_cross_encoder_scores_generated_passages(server, tmp_path, mini_beir, minilm, tiny_cross_encoder):
    config = mine_config(
        server, negatives=2, sources=["llm"], cross_encoder=str(tiny_cross_encoder), ce_relative_margin=None
    )
    result = run_mine(mini_beir, Workspace(tmp_path / "ws"), config, bi_encoder=minilm)
    records = read_jsonl(tmp_path / "ws" / "mine" / "negatives.jsonl")
    assert result.filters["cross_encoder_scored"] == 3 * len(records)  # the positive and two passages per pair
    assert all(isinstance(n["ce_score"], float) and n["source"] == "llm" for r in records for n in r["negatives"])
