"""Hard negatives written by an LLM: passages that look relevant to a query but do not answer it.

For each (query, positive text) the prompt template (with ``{query}``,
``{positive}`` and ``{n}``) goes to an OpenAI-compatible chat-completions
endpoint through `domainfit.synth.llm_client.ChatClient` (retries, the reply
cache under ``<workspace>/cache/llm/`` and the token/cost counters are its).
The reply holds one passage per block (blocks are separated by blank lines; a
reply without blank lines holds one passage per line); numbering, bullets and
"Passage 1:" labels are stripped. Generated passages are texts, not corpus
documents: `generated_id` names them ``llm:<sha1[:12]>``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

from domainfit.core.progress import progress_bar
from domainfit.data.splits import normalise_text
from domainfit.synth.config import LLMNegativesConfig
from domainfit.synth.llm_client import ChatBacked

_PLACEHOLDER = re.compile(r"\{(query|positive|n)\}")
_LABEL = re.compile(
    r"^(?:[-*•·–]\s+|\(?\d{1,3}[.):\]]\s+|(?:passage|negative)\s*\d*\s*[:.)-]\s*)",
    re.IGNORECASE,
)
_QUOTES = "\"'`“”‘’*"
_BLANK_LINE = re.compile(r"\n\s*\n")


def build_negatives_prompt(template: str, query: str, positive: str, n: int) -> str:
    """Fill ``{query}``, ``{positive}`` and ``{n}`` in one pass (braces inside the texts are left alone)."""
    values = {"query": query, "positive": positive, "n": str(n)}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _clean(block: str) -> str:
    """Join a block's lines and strip its numbering, bullet or label and surrounding quotes."""
    text = " ".join(line.strip() for line in block.strip().splitlines() if line.strip())
    return _LABEL.sub("", text, count=1).strip().strip(_QUOTES).strip()


def parse_passages(content: str, n: int, truncated: bool = False, min_words: int = 1) -> list[str]:
    """Return up to ``n`` distinct passages from a reply.

    In: the reply text, how many passages were asked for, whether ``max_tokens``
    cut the reply off (then its last passage is dropped), and the fewest words
    a passage needs. Out: the passages in reply order. Blocks separated by blank
    lines are passages; a reply without blank lines is read one passage per
    line. Preambles ending in ``:`` ("Here are 3 passages:"), passages shorter
    than ``min_words`` and repeats (after `normalise_text`) are skipped.
    """
    text = content.strip().replace("\r\n", "\n")
    blocks = [b for b in _BLANK_LINE.split(text) if b.strip()]
    if len(blocks) == 1:
        blocks = [line for line in blocks[0].splitlines() if line.strip()]
    if truncated and len(blocks) > 1:
        blocks = blocks[:-1]
    out: list[str] = []
    seen: set[str] = set()
    for block in blocks:
        passage = _clean(block)
        norm = normalise_text(passage)
        if not norm or passage.endswith(":") or len(passage.split()) < min_words or norm in seen:
            continue
        seen.add(norm)
        out.append(passage)
    return out[:n]


def generated_id(text: str) -> str:
    """Return the id of a generated passage: ``llm:`` and the first 12 hex digits of the SHA-1 of its text."""
    return "llm:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


class LLMNegativeGenerator(ChatBacked):
    """Asks an LLM for plausible-but-wrong passages for (query, positive) pairs.

    Inputs: an `LLMNegativesConfig` (``base_url`` required) and the reply cache
    folder (``<workspace>/cache/llm``). Output of `generate`: per request, up
    to ``passages_per_pair`` passages. ``usage`` holds the request and token
    counters afterwards. Requirements: ``requests``. Example::

        gen = LLMNegativeGenerator(LLMNegativesConfig(base_url="http://127.0.0.1:8000/v1"), Path("ws/cache/llm"))
        passages = gen.generate([("reset password", "Open Settings > Security and ...")])
    """

    name = "llm"
    config: LLMNegativesConfig

    def __init__(self, config: LLMNegativesConfig, cache_dir: Path) -> None:
        self._connect(config, cache_dir)

    def messages(self, query: str, positive: str) -> list[dict[str, str]]:
        """Return the chat messages sent for one (query, positive text)."""
        cfg = self.config
        prompt = build_negatives_prompt(cfg.prompt, query, positive[: cfg.max_positive_chars], cfg.passages_per_pair)
        return self.client.messages(prompt)

    def generate_one(self, query: str, positive: str, label: str = "pair") -> list[str]:
        """Return the passages for one (query, positive text), from the cache or the endpoint.

        ``label`` names the request in errors; a malformed reply raises `LLMError`.
        """
        cfg = self.config
        reply = self.client.complete(self.messages(query, positive), cfg.passages_per_pair, label)
        return parse_passages(reply.content, cfg.passages_per_pair, reply.truncated, cfg.min_words)

    def generate(self, requests: Sequence[tuple[str, str]], labels: Sequence[str] | None = None) -> list[list[str]]:
        """Return the passages of every (query, positive text), in request order.

        Identical requests are sent once; ``concurrency`` requests are in flight.
        ``labels`` name the requests in errors (default ``"pair <index>"``). The
        first failure cancels the requests not yet sent and raises `LLMError`.
        """
        if labels is not None and len(labels) != len(requests):
            raise ValueError("need one label per request")
        first: dict[tuple[str, str], int] = {}
        for n, request in enumerate(requests):
            first.setdefault(request, n)
        results: dict[tuple[str, str], list[str]] = {}
        pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="domainfit-llm-neg")
        try:
            with progress_bar("generating negatives", len(first)) as advance:
                futures: dict[Future[list[str]], tuple[str, str]] = {
                    pool.submit(self.generate_one, q, p, labels[n] if labels is not None else f"pair {n}"): (q, p)
                    for (q, p), n in first.items()
                }
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    advance(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return [list(results[request]) for request in requests]
