"""LLM doc2query through any OpenAI-compatible chat-completions endpoint.

For each document the prompt template (with ``{title}``, ``{text}`` and
``{n}``) goes to ``<base_url>/chat/completions``; the reply holds one query per
line (numbering and bullets are stripped). Requests run in a thread pool of
``concurrency``; 429, 5xx, timeouts and connection errors are retried with
exponential backoff (``Retry-After`` honoured); other HTTP errors and malformed
replies raise `LLMError` naming the document. Good replies are cached in
``<cache_dir>/<key[:2]>/<key>.json`` (atomic writes), keyed by the hash of
(messages, model, temperature, n), so a re-run sends nothing. Tokens come from
each reply's ``usage``; the cost is priced per 1,000 tokens.
The API key is read from an environment variable and never written anywhere.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from domainfit.data.splits import normalise_text
from domainfit.errors import DomainfitError
from domainfit.synth.base import Advance, QueryGenerator, SyntheticQuery, _no_progress
from domainfit.synth.config import LLMConfig
from domainfit.types import Document
from domainfit.workspace import atomic_write_json

_PLACEHOLDER = re.compile(r"\{(title|text|n)\}")
_BULLET = re.compile(
    r"^(?:[-*•·–]\s+|\(?\d{1,3}[.):\]]\s+|\(?[a-z][.)]\s+|(?:q|query)\s*\d*\s*[:.)-]\s*)", re.IGNORECASE
)
_QUOTES = "\"'`“”‘’*"
_MAX_QUERY_WORDS = 40


class LLMError(DomainfitError):
    """The endpoint failed for a document, or answered something that is not a chat completion."""


@dataclass
class LLMUsage:
    """Requests and tokens of one run; cached replies cost nothing and are counted apart."""

    requests: int = 0
    cached: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    replies_without_usage: int = 0
    price_prompt_per_1k: float = 0.0
    price_completion_per_1k: float = 0.0

    @property
    def cost(self) -> float:
        """Dollars spent in this run: tokens of sent requests times the prices per 1,000."""
        return (
            self.prompt_tokens * self.price_prompt_per_1k + self.completion_tokens * self.price_completion_per_1k
        ) / 1000.0

    def to_json(self) -> dict[str, Any]:
        """Return the counters and the cost (rounded to micro-dollars)."""
        return {**asdict(self), "cost_usd": round(self.cost, 6)}


def build_prompt(template: str, title: str, text: str, n: int) -> str:
    """Fill ``{title}``, ``{text}`` and ``{n}`` in one pass (braces inside the document are left alone)."""
    values = {"title": title or "(none)", "text": text, "n": str(n)}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def parse_queries(content: str, n: int, truncated: bool = False) -> list[str]:
    """Return up to ``n`` distinct queries from a reply: one per line, numbering, bullets and quotes stripped.

    Lines ending in ``:`` (a preamble such as "Here are 3 queries:") and overlong
    lines are skipped; when the reply was cut off (``truncated``), its last line is dropped.
    """
    lines = [line.strip() for line in content.strip().splitlines()]
    if truncated and len(lines) > 1:
        lines = lines[:-1]
    out: list[str] = []
    seen: set[str] = set()
    for line in lines:
        query = _BULLET.sub("", line, count=1).strip().strip(_QUOTES).strip()
        norm = normalise_text(query)
        if not norm or query.endswith(":") or len(query.split()) > _MAX_QUERY_WORDS or norm in seen:
            continue
        seen.add(norm)
        out.append(query)
    return out[:n]


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class ResponseCache:
    """Chat-completion replies on disk, one JSON file per request key, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def key(messages: list[dict[str, str]], model: str, temperature: float, n: int) -> str:
        """Hash of what determines a reply: the messages, the model, the temperature and the queries asked for."""
        payload = json.dumps(
            {"messages": messages, "model": model, "temperature": temperature, "n": n},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        """Where the reply of ``key`` is stored."""
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the cached reply, or None (an unreadable file counts as a miss)."""
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        reply = data.get("response") if isinstance(data, dict) else None
        return reply if isinstance(reply, dict) else None

    def put(self, key: str, reply: dict[str, Any], model: str) -> None:
        """Store a good reply."""
        atomic_write_json(self._path(key), {"format_version": 1, "model": model, "response": reply})


def _content(reply: Any, doc_id: str) -> tuple[str, bool]:
    """Return (message content, cut off by max_tokens) of a chat completion, or raise `LLMError`."""
    if not isinstance(reply, dict):
        raise LLMError(f"document {doc_id}: malformed reply from the LLM endpoint: expected a JSON object")
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LLMError(f"document {doc_id}: malformed reply from the LLM endpoint: no choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise LLMError(f"document {doc_id}: malformed reply from the LLM endpoint: choices[0].message.content missing")
    return content, choices[0].get("finish_reason") == "length"


class LLMQueryGenerator(QueryGenerator):
    """Queries written by an LLM behind an OpenAI-compatible endpoint (doc2query).

    Inputs: an `LLMConfig` (``base_url`` required), the reply cache folder
    (``<workspace>/cache/llm``) and the seed (for sampling ``max_documents``).
    Output: up to ``queries_per_document`` queries per document. ``usage``
    holds the request and token counters afterwards.
    Requirements: ``requests``. Example::

        gen = LLMQueryGenerator(LLMConfig(base_url="http://127.0.0.1:8000/v1"), Path("work/cache/llm"))
        queries = gen.generate(docs)
        print(gen.usage.to_json())
    """

    name = "llm"

    def __init__(self, config: LLMConfig, cache_dir: Path, seed: int = 13) -> None:
        if not config.base_url:
            raise ValueError("LLMQueryGenerator needs config.base_url")
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.cache = ResponseCache(cache_dir)
        self.seed = seed
        self.usage = LLMUsage(
            price_prompt_per_1k=config.price_prompt_per_1k, price_completion_per_1k=config.price_completion_per_1k
        )
        self._lock = threading.Lock()
        self._local = threading.local()
        self._api_key = os.environ.get(config.api_key_env) or None

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob (the API key itself never; only whether one was found)."""
        data = self.config.model_dump(mode="json")
        data["name"] = self.name
        data["api_key_found"] = self._api_key is not None
        return data

    def messages(self, doc: Document) -> list[dict[str, str]]:
        """Return the chat messages sent for ``doc``."""
        text = doc.text[: self.config.max_document_chars]
        prompt = build_prompt(self.config.prompt, doc.title, text, self.config.queries_per_document)
        system = [{"role": "system", "content": self.config.system}] if self.config.system else []
        return [*system, {"role": "user", "content": prompt}]

    def _session(self) -> Any:
        """One HTTP session per worker thread (connections are reused)."""
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            self._local.session = session
        return session

    def _count(self, reply: dict[str, Any], cached: bool) -> None:
        """Add a reply's token usage to the counters."""
        usage = reply.get("usage") if isinstance(reply.get("usage"), dict) else None
        prompt = int(usage.get("prompt_tokens") or 0) if usage else 0
        completion = int(usage.get("completion_tokens") or 0) if usage else 0
        with self._lock:
            if cached:
                self.usage.cached += 1
                self.usage.cached_prompt_tokens += prompt
                self.usage.cached_completion_tokens += completion
                return
            self.usage.requests += 1
            self.usage.prompt_tokens += prompt
            self.usage.completion_tokens += completion
            self.usage.replies_without_usage += usage is None

    def _send(self, body: dict[str, Any], doc_id: str) -> Any:
        """POST one request, retrying 429/5xx/timeouts/connection errors; return the decoded JSON reply."""
        import requests

        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        cfg = self.config
        for attempt in range(cfg.max_retries + 1):
            wait: float | None = None
            try:
                response = self._session().post(self.url, json=body, headers=headers, timeout=cfg.timeout)
            except requests.Timeout:
                why = f"timed out after {cfg.timeout:g} s"
            except requests.ConnectionError as exc:
                why = f"could not connect to {self.url} ({type(exc).__name__})"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    try:
                        return response.json()
                    except ValueError:
                        snippet = response.text[:120].replace("\n", " ")
                        raise LLMError(
                            f"document {doc_id}: malformed reply from the LLM endpoint: not JSON ({snippet!r})"
                        ) from None
                if status != 429 and not 500 <= status < 600:
                    hint = f"; check the API key in ${cfg.api_key_env}" if status in (401, 403) else ""
                    raise LLMError(
                        f"document {doc_id}: the LLM endpoint answered HTTP {status}: "
                        f"{response.text[:200].strip()!r}{hint}"
                    )
                why = f"got HTTP {status}"
                wait = _retry_after(response.headers.get("Retry-After"))
            if attempt == cfg.max_retries:
                raise LLMError(f"document {doc_id}: LLM request {why}; gave up after {attempt + 1} attempt(s)")
            with self._lock:
                self.usage.retries += 1
            time.sleep(min(cfg.max_backoff, wait if wait is not None else cfg.backoff * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def query_document(self, doc: Document) -> list[SyntheticQuery]:
        """Ask for (or read from the cache) the queries of one document."""
        cfg = self.config
        messages = self.messages(doc)
        key = ResponseCache.key(messages, cfg.model, cfg.temperature, cfg.queries_per_document)
        reply = self.cache.get(key)
        cached = reply is not None
        if reply is None:
            body = {
                "model": cfg.model,
                "messages": messages,
                "temperature": cfg.temperature,
                "max_tokens": cfg.max_tokens,
            }
            reply = self._send(body, doc.id)
        content, truncated = _content(reply, doc.id)
        if not cached:
            self.cache.put(key, reply, cfg.model)
        self._count(reply, cached)
        texts = parse_queries(content, cfg.queries_per_document, truncated)
        return [SyntheticQuery(t, doc.id, self.name, metadata={"cached": cached}) for t in texts]

    def _documents(self, docs: Sequence[Document]) -> list[Document]:
        """Return the documents to send: all, or a seeded sample of ``max_documents`` in corpus order."""
        limit = self.config.max_documents
        if limit is None or limit >= len(docs):
            return list(docs)
        import random

        keep = set(random.Random(f"{self.seed}\x00llm").sample(range(len(docs)), limit))
        return [doc for n, doc in enumerate(docs) if n in keep]

    def generate(self, docs: Sequence[Document], advance: Advance = _no_progress) -> list[SyntheticQuery]:
        """Query every document (``concurrency`` at a time); results in document order.

        The first failure cancels the requests not yet sent and raises `LLMError`.
        """
        chosen = self._documents(docs)
        advance(len(docs) - len(chosen))
        results: dict[int, list[SyntheticQuery]] = {}
        pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="domainfit-llm")
        try:
            futures: dict[Future[list[SyntheticQuery]], int] = {
                pool.submit(self.query_document, doc): n for n, doc in enumerate(chosen)
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                advance(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return [q for n in range(len(chosen)) for q in results[n]]
