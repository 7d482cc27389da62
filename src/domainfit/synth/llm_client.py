"""A small client for OpenAI-compatible chat-completions endpoints, shared by every LLM feature.

`ChatClient` sends one request per call to ``<base_url>/chat/completions``:
429, 5xx, timeouts and connection errors are retried with exponential backoff
(``Retry-After`` honoured); other HTTP errors and malformed replies raise
`LLMError` naming what the request was for. Good replies are cached by
`ResponseCache` in ``<cache_dir>/<key[:2]>/<key>.json`` (atomic writes), keyed
by the hash of the whole request body (model, messages and every generation
setting: temperature, max_tokens, ...) and the items asked for, so a re-run
sends nothing and a changed setting asks again. A reply cut off by
``max_tokens`` (``finish_reason == "length"``) is never stored nor served.
Tokens come from each reply's ``usage`` and are counted in `LLMUsage`; the cost
is priced per 1,000 tokens. The API key is read from an environment variable
and never written anywhere. Calls are thread-safe (one HTTP session per thread).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from domainfit.core.errors import DomainfitError
from domainfit.core.files import atomic_write_json
from domainfit.synth.config import ChatEndpointConfig


class LLMError(DomainfitError):
    """The endpoint failed for a request, or answered something that is not a chat completion."""


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


def retry_after(value: str | None) -> float | None:
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
    def key(messages: list[dict[str, str]], model: str, temperature: float, n: int, **settings: Any) -> str:
        """Hash of what determines a reply: the messages, the model, the sampling settings and the items asked for.

        ``settings`` are the other fields of the request body (``max_tokens``, ``top_p``, ...);
        the same as `request_key` of that body.
        """
        return ResponseCache.request_key(
            {"model": model, "messages": messages, "temperature": temperature, **settings}, n
        )

    @staticmethod
    def request_key(body: dict[str, Any], n: int) -> str:
        """Hash of the canonical JSON of the whole request body and of ``n``, the items the prompt asks for."""
        payload = json.dumps(
            {"body": body, "n": n}, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        """Where the reply of ``key`` is stored."""
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the cached reply, or None (an unreadable file or a cut-off reply counts as a miss)."""
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        reply = data.get("response") if isinstance(data, dict) else None
        return reply if isinstance(reply, dict) and not cut_off(reply) else None

    def put(self, key: str, reply: dict[str, Any], model: str) -> None:
        """Store a good reply (a cut-off one is not stored)."""
        if cut_off(reply):
            return
        atomic_write_json(self._path(key), {"format_version": 1, "model": model, "response": reply})


def cut_off(reply: Any) -> bool:
    """Whether any choice of a chat completion stopped at ``max_tokens`` (``finish_reason == "length"``)."""
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not isinstance(choices, list):
        return False
    return any(isinstance(c, dict) and c.get("finish_reason") == "length" for c in choices)


def reply_content(reply: Any, label: str) -> tuple[str, bool]:
    """Return (message content, cut off by max_tokens) of a chat completion, or raise `LLMError`.

    ``label`` names what the request was for (``"document d1"``) in the error.
    """
    if not isinstance(reply, dict):
        raise LLMError(f"{label}: malformed reply from the LLM endpoint: expected a JSON object")
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LLMError(f"{label}: malformed reply from the LLM endpoint: no choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise LLMError(f"{label}: malformed reply from the LLM endpoint: choices[0].message.content missing")
    return content, choices[0].get("finish_reason") == "length"


@dataclass(frozen=True)
class ChatReply:
    """The content of one chat completion, whether ``max_tokens`` cut it off and whether it came from the cache."""

    content: str
    truncated: bool
    cached: bool


class ChatClient:
    """Sends chat messages to an OpenAI-compatible endpoint, with retries, an on-disk cache and token counts.

    Inputs: a `ChatEndpointConfig` (``base_url`` required) and the cache folder
    (``<workspace>/cache/llm``). ``usage`` holds the counters afterwards.
    Requirements: ``requests``. Example::

        client = ChatClient(LLMConfig(base_url="http://127.0.0.1:8000/v1"), Path("work/cache/llm"))
        reply = client.complete([{"role": "user", "content": "hi"}], n=1, label="greeting")
    """

    def __init__(self, config: ChatEndpointConfig, cache_dir: Path) -> None:
        if not config.base_url:
            raise ValueError("ChatClient needs config.base_url")
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.cache = ResponseCache(cache_dir)
        self.usage = LLMUsage(
            price_prompt_per_1k=config.price_prompt_per_1k, price_completion_per_1k=config.price_completion_per_1k
        )
        self._lock = threading.Lock()
        self._local = threading.local()
        self.api_key = os.environ.get(config.api_key_env) or None

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """Return the chat messages for a user prompt (the configured system message first, when set)."""
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

    def send(self, body: dict[str, Any], label: str) -> Any:
        """POST one request, retrying 429/5xx/timeouts/connection errors; return the decoded JSON reply."""
        import requests

        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
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
                            f"{label}: malformed reply from the LLM endpoint: not JSON ({snippet!r})"
                        ) from None
                if status != 429 and not 500 <= status < 600:
                    hint = f"; check the API key in ${cfg.api_key_env}" if status in (401, 403) else ""
                    raise LLMError(
                        f"{label}: the LLM endpoint answered HTTP {status}: {response.text[:200].strip()!r}{hint}"
                    )
                why = f"got HTTP {status}"
                wait = retry_after(response.headers.get("Retry-After"))
            if attempt == cfg.max_retries:
                raise LLMError(f"{label}: LLM request {why}; gave up after {attempt + 1} attempt(s)")
            with self._lock:
                self.usage.retries += 1
            time.sleep(min(cfg.max_backoff, wait if wait is not None else cfg.backoff * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def body(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """Return the request body for ``messages``: the model and every generation setting sent."""
        cfg = self.config
        return {"model": cfg.model, "messages": messages, "temperature": cfg.temperature, "max_tokens": cfg.max_tokens}

    def complete(self, messages: list[dict[str, str]], n: int, label: str) -> ChatReply:
        """Return the reply to ``messages`` (``n`` items asked for), from the cache or the endpoint.

        The cache key is the whole request body (and ``n``). A good reply is
        cached before it is returned; a malformed one raises `LLMError` (naming
        ``label``) and is not cached; one cut off by ``max_tokens`` is returned
        (``truncated``) but not cached, so a re-run asks again.
        """
        body = self.body(messages)
        key = ResponseCache.request_key(body, n)
        reply = self.cache.get(key)
        if reply is not None:
            try:
                reply_content(reply, label)
            except LLMError:  # a damaged entry is a miss, not an error
                reply = None
        cached = reply is not None
        if reply is None:
            reply = self.send(body, label)
        content, truncated = reply_content(reply, label)
        if not cached and not truncated:
            self.cache.put(key, reply, self.config.model)
        self._count(reply, cached)
        return ChatReply(content, truncated, cached)


class ChatBacked:
    """Shared by domainfit's LLM generators: the chat client, its usage counters and the knobs to record.

    A subclass calls `_connect` in its ``__init__`` and sets a class attribute ``name``.
    """

    name: ClassVar[str]
    config: ChatEndpointConfig
    client: ChatClient

    def _connect(self, config: ChatEndpointConfig, cache_dir: Path) -> None:
        """Keep ``config`` and open the client (reply cache under ``cache_dir``); needs ``config.base_url``."""
        if not config.base_url:
            raise ValueError(f"{type(self).__name__} needs config.base_url")
        self.config = config
        self.client = ChatClient(config, cache_dir)

    @property
    def usage(self) -> LLMUsage:
        """Request, token and cost counters of this run."""
        return self.client.usage

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob (the API key itself never; only whether one was found)."""
        data = self.config.model_dump(mode="json")
        data["name"] = self.name
        data["api_key_found"] = self.client.api_key is not None
        return data
