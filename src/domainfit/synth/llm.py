"""LLM doc2query through any OpenAI-compatible chat-completions endpoint.

For each document the prompt template (with ``{title}``, ``{text}`` and
``{n}``) goes to ``<base_url>/chat/completions``; the reply holds one query per
line (numbering and bullets are stripped). Requests run in a thread pool of
``concurrency``. Sending, retries, the reply cache and the token counts are
those of `domainfit.synth.llm_client.ChatClient` (re-exported here:
`LLMError`, `LLMUsage`, `ResponseCache`); errors name the document.
The API key is read from an environment variable and never written anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

from domainfit.core.types import Document
from domainfit.data.splits import normalise_text
from domainfit.synth.base import Advance, QueryGenerator, SyntheticQuery, _no_progress
from domainfit.synth.config import LLMConfig
from domainfit.synth.llm_client import ChatBacked, LLMError, LLMUsage, ResponseCache

__all__ = ["LLMError", "LLMQueryGenerator", "LLMUsage", "ResponseCache", "build_prompt", "parse_queries"]

_PLACEHOLDER = re.compile(r"\{(title|text|n)\}")
_BULLET = re.compile(
    r"^(?:[-*•·–]\s+|\(?\d{1,3}[.):\]]\s+|\(?[a-z][.)]\s+|(?:q|query)\s*\d*\s*[:.)-]\s*)", re.IGNORECASE
)
_QUOTES = "\"'`“”‘’*"
_MAX_QUERY_WORDS = 40


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


class LLMQueryGenerator(ChatBacked, QueryGenerator):
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
    config: LLMConfig

    def __init__(self, config: LLMConfig, cache_dir: Path, seed: int = 13) -> None:
        self._connect(config, cache_dir)
        self.url = self.client.url
        self.cache = self.client.cache
        self.seed = seed

    def messages(self, doc: Document) -> list[dict[str, str]]:
        """Return the chat messages sent for ``doc``."""
        text = doc.text[: self.config.max_document_chars]
        return self.client.messages(build_prompt(self.config.prompt, doc.title, text, self.config.queries_per_document))

    def query_document(self, doc: Document) -> list[SyntheticQuery]:
        """Ask for (or read from the cache) the queries of one document."""
        n = self.config.queries_per_document
        reply = self.client.complete(self.messages(doc), n, f"document {doc.id}")
        texts = parse_queries(reply.content, n, reply.truncated)
        return [self.query(t, doc.id, metadata={"cached": reply.cached}) for t in texts]

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
