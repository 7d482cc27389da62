"""LLM doc2query against a local HTTP server that speaks the OpenAI chat-completions API."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from domainfit.core.errors import DomainfitError
from domainfit.core.types import Document
from domainfit.core.workspace import Workspace
from domainfit.stages.synth import run_synth
from domainfit.synth.config import LLMConfig, SynthConfig
from domainfit.synth.llm import LLMError, LLMQueryGenerator, ResponseCache, build_prompt, parse_queries

DOCS = [
    Document("d1", "Login fails with ERR_AUTH_702 when the session token has expired.", title="Auth errors"),
    Document("d2", "Invoices can be downloaded as PDF files from the billing page.", title="Invoices"),
    Document("d3", "Open TCP port 443 in the firewall to allow HTTPS traffic.", title="Firewall"),
]


def completion(content, prompt_tokens=100, completion_tokens=20, finish="stop"):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def default_reply(body):
    """Three numbered queries naming the document's first word, so replies differ per document."""
    prompt = body["messages"][-1]["content"]
    word = prompt.split("Document:\n", 1)[1].split()[0].lower()
    return 200, {}, json.dumps(completion(f"1. {word} query one\n2) {word} second query\n- {word} third"))


class FakeOpenAI:
    """A chat-completions server on 127.0.0.1 (port 0); ``respond(body)`` returns (status, headers, text)."""

    def __init__(self):
        self.requests = []
        self.respond = default_reply
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, headers, text = server.respond(body)
                finally:
                    with server.lock:
                        server.in_flight -= 1
                data = text.encode()
                try:
                    self.send_response(status)
                    for key, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    fake = FakeOpenAI()
    yield fake
    fake.close()


def config(server, **overrides):
    values = {"base_url": server.url, "model": "test-model", "backoff": 0.01, "max_backoff": 1.0, "timeout": 5.0}
    return LLMConfig(**{**values, **overrides})


def test_success_parses_queries_sends_the_prompt_and_counts_tokens_and_cost(server, tmp_path, monkeypatch):
    monkeypatch.setenv("DOMAINFIT_TEST_KEY", "sk-secret-123")
    cfg = config(
        server, api_key_env="DOMAINFIT_TEST_KEY", price_prompt_per_1k=0.5, price_completion_per_1k=2.0, concurrency=2
    )
    gen = LLMQueryGenerator(cfg, tmp_path / "cache")
    queries = gen.generate(DOCS)
    assert [(q.doc_id, q.text) for q in queries[:3]] == [
        ("d1", "login query one"),
        ("d1", "login second query"),
        ("d1", "login third"),
    ]
    assert [q.doc_id for q in queries] == ["d1"] * 3 + ["d2"] * 3 + ["d3"] * 3  # document order kept
    assert all(q.source == "llm" and q.positive_text is None for q in queries)
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-secret-123"
    assert request["body"]["model"] == "test-model" and request["body"]["max_tokens"] == cfg.max_tokens
    prompts = sorted(r["body"]["messages"][-1]["content"] for r in server.requests)
    assert any("Title: Auth errors" in p and "ERR_AUTH_702" in p and "Write 3 different" in p for p in prompts)
    usage = gen.usage
    assert (usage.requests, usage.cached, usage.prompt_tokens, usage.completion_tokens) == (3, 0, 300, 60)
    assert usage.cost == pytest.approx(300 * 0.5 / 1000 + 60 * 2.0 / 1000)
    assert usage.to_json()["cost_usd"] == pytest.approx(0.27)
    cached = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert "sk-secret-123" not in cached and "sk-secret-123" not in json.dumps(gen.get_config_dict())


def test_429_then_success_honours_retry_after(server, tmp_path):
    calls = {"n": 0}

    def respond(body):
        calls["n"] += 1
        if calls["n"] == 1:
            return 429, {"Retry-After": "0.05"}, json.dumps({"error": {"message": "rate limited"}})
        return default_reply(body)

    server.respond = respond
    # a 30 s backoff would blow the time budget: only Retry-After can make this fast
    gen = LLMQueryGenerator(config(server, backoff=30.0, max_backoff=60.0), tmp_path / "cache")
    start = time.perf_counter()
    queries = gen.generate(DOCS[:1])
    assert time.perf_counter() - start < 10
    assert len(queries) == 3 and len(server.requests) == 2 and gen.usage.retries == 1
    assert gen.usage.requests == 1  # the 429 is not a billed request


def test_5xx_is_retried_with_backoff_and_gives_up_with_a_clear_error(server, tmp_path):
    server.respond = lambda body: (503, {}, "overloaded")
    gen = LLMQueryGenerator(config(server, max_retries=2), tmp_path / "cache")
    with pytest.raises(LLMError, match=r"document d1: LLM request got HTTP 503; gave up after 3 attempt"):
        gen.generate(DOCS[:1])
    assert len(server.requests) == 3


def test_timeout_is_a_clear_error(server, tmp_path):
    def slow(body):
        time.sleep(1.0)
        return default_reply(body)

    server.respond = slow
    gen = LLMQueryGenerator(config(server, timeout=0.2, max_retries=1), tmp_path / "cache")
    with pytest.raises(LLMError, match=r"document d1: LLM request timed out after 0.2 s; gave up after 2 attempt"):
        gen.generate(DOCS[:1])


def test_client_errors_are_not_retried(server, tmp_path):
    server.respond = lambda body: (401, {}, json.dumps({"error": "bad key"}))
    gen = LLMQueryGenerator(config(server, api_key_env="DOMAINFIT_UNSET_KEY"), tmp_path / "cache")
    with pytest.raises(LLMError, match=r"HTTP 401.*check the API key in \$DOMAINFIT_UNSET_KEY"):
        gen.generate(DOCS[:1])
    assert len(server.requests) == 1 and "Authorization" not in server.requests[0]["headers"]


def test_connection_refused_is_retried_then_reported(tmp_path):
    gen = LLMQueryGenerator(
        LLMConfig(base_url="http://127.0.0.1:9/v1", backoff=0.0, max_retries=1, timeout=2), tmp_path / "c"
    )
    with pytest.raises(LLMError, match=r"document d1: LLM request could not connect"):
        gen.generate(DOCS[:1])
    assert gen.usage.retries == 1


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("<html>gateway</html>", "not JSON"),
        (json.dumps({"id": "x", "choices": []}), "no choices"),
        (json.dumps({"choices": [{"message": {"role": "assistant"}}]}), r"choices\[0\]\.message\.content missing"),
    ],
)
def test_malformed_replies_raise_naming_the_document_and_are_not_cached(server, tmp_path, reply, message):
    server.respond = lambda body: (200, {}, reply)
    gen = LLMQueryGenerator(config(server), tmp_path / "cache")
    with pytest.raises(LLMError, match=rf"document d1: malformed reply from the LLM endpoint: {message}"):
        gen.generate(DOCS[:1])
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_concurrency_limit_and_order(server, tmp_path):
    def slow(body):
        time.sleep(0.05)
        return default_reply(body)

    server.respond = slow
    docs = [Document(f"d{i}", f"word{i} text about topic {i}.") for i in range(8)]
    gen = LLMQueryGenerator(config(server, concurrency=2), tmp_path / "cache")
    queries = gen.generate(docs)
    assert server.max_in_flight <= 2
    assert [q.text for q in queries[::3]] == [f"word{i} query one" for i in range(8)]


def test_max_documents_samples_a_seeded_subset(server, tmp_path):
    docs = [Document(f"d{i}", f"word{i} text.") for i in range(10)]
    ids = []
    for _ in range(2):
        gen = LLMQueryGenerator(config(server, max_documents=4), tmp_path / "cache", seed=7)
        ids.append(sorted({q.doc_id for q in gen.generate(docs)}))
    assert len(ids[0]) == 4 and ids[0] == ids[1]


def test_parse_queries_strips_numbering_bullets_quotes_and_preambles():
    content = (
        "Here are 4 queries:\n"
        '1. "reset 2fa token"\n'
        "2) ERR_AUTH_702 login\n"
        "- sso saml setup\n"
        "* **invoice pdf**\n"
        "Q5: vat number eu\n"
        "\n"
        "3. reset 2FA token\n"
        "v2.3.1 upgrade notes\n"
    )
    assert parse_queries(content, 10) == [
        "reset 2fa token",
        "ERR_AUTH_702 login",
        "sso saml setup",
        "invoice pdf",
        "vat number eu",
        "v2.3.1 upgrade notes",
    ]
    assert parse_queries(content, 2) == ["reset 2fa token", "ERR_AUTH_702 login"]
    assert parse_queries("first query\nsecond qu", 5, truncated=True) == ["first query"]


def test_build_prompt_fills_placeholders_once():
    template = "T={title} N={n}\n{text}"
    assert (
        build_prompt(template, "Auth", "uses {n} and {title} literally", 3)
        == "T=Auth N=3\nuses {n} and {title} literally"
    )


def test_prompt_template_must_contain_text():
    with pytest.raises(ValueError, match=r"\{text\}"):
        LLMConfig(base_url="http://x", prompt="Write {n} queries for {title}")


def test_cache_key_depends_on_prompt_model_temperature_and_n():
    messages = [{"role": "user", "content": "p"}]
    base = ResponseCache.key(messages, "m", 0.7, 3)
    assert base == ResponseCache.key(list(messages), "m", 0.7, 3)
    others = {
        ResponseCache.key([{"role": "user", "content": "q"}], "m", 0.7, 3),
        ResponseCache.key(messages, "m2", 0.7, 3),
        ResponseCache.key(messages, "m", 0.2, 3),
        ResponseCache.key(messages, "m", 0.7, 4),
    }
    assert base not in others and len(others) == 4


# ----------------------------------------------------------------------------- through the stage


def synth_config(server, **llm):
    return SynthConfig(generators=[], roundtrip="none", llm=config(server, **llm))


def test_stage_rerun_hits_the_cache_and_sends_nothing(server, tmp_path, mini_beir):
    ws = Workspace(tmp_path / "ws")
    first = run_synth(mini_beir, ws, synth_config(server, price_prompt_per_1k=1.0))
    sent = len(server.requests)
    assert sent == first.n_source_documents == 18 and first.llm["requests"] == sent
    assert first.llm["cost_usd"] == pytest.approx(sent * 100 / 1000)
    second = run_synth(mini_beir, ws, synth_config(server, price_prompt_per_1k=1.0), force=True)
    assert len(server.requests) == sent  # zero new requests
    assert second.llm["requests"] == 0 and second.llm["cached"] == sent and second.llm["cost_usd"] == 0
    assert second.n_kept == first.n_kept
    first_lines = (ws.root / "synth" / "queries.jsonl").read_text()
    assert first_lines.count('"source":"llm"') == first.n_kept


def test_stage_malformed_reply_writes_nothing(server, tmp_path, mini_beir):
    ws = Workspace(tmp_path / "ws")
    good = run_synth(mini_beir, ws, synth_config(server))
    before = (ws.root / "synth" / "queries.jsonl").read_bytes()
    calls = {"n": 0}

    def sometimes_broken(body):
        calls["n"] += 1
        return (200, {}, "not json at all") if calls["n"] == 5 else default_reply(body)

    server.respond = sometimes_broken
    with pytest.raises(DomainfitError, match=r"document \S+: malformed reply"):
        run_synth(mini_beir, ws, synth_config(server, temperature=0.1))  # new cache keys: everything is sent
    assert (ws.root / "synth" / "queries.jsonl").read_bytes() == before  # the old artifact is untouched
    assert sorted(p.name for p in ws.root.iterdir() if p.name.startswith(".synth")) == []
    assert json.loads((ws.root / "synth" / "summary.json").read_text())["n_kept"] == good.n_kept


def test_stage_failure_on_a_fresh_workspace_leaves_no_synth_folder(server, tmp_path, mini_beir):
    server.respond = lambda body: (200, {}, json.dumps({"choices": []}))
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(LLMError, match="no choices"):
        run_synth(mini_beir, ws, synth_config(server))
    assert not (ws.root / "synth").exists()


def test_cli_llm_only_prints_the_token_bill(server, tmp_path, mini_beir):
    from typer.testing import CliRunner

    from domainfit.cli import app

    config_file = tmp_path / "domainfit.toml"
    config_file.write_text("[synth.llm]\nprice_prompt_per_1k = 0.25\nbackoff = 0.01\n")
    args = ["synth", str(mini_beir), "--workspace", str(tmp_path / "ws"), "--config", str(config_file)]
    args += ["--generators", "none", "--llm-base-url", server.url, "--llm-model", "tiny-local"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "LLM: 18 requests (0 from cache, 0 retries), 1,800 prompt + 360 completion tokens, $0.4500" in result.stdout
    assert {r["body"]["model"] for r in server.requests} == {"tiny-local"}
