"""Level 1: query/document prompts chosen on dev from a small candidate set, no weight change.

Candidates are the user's (``[train] prompt_candidates`` and the configured
``query_prompt``/``document_prompt``) and a few built-in templates from the
instruction-trained retrievers' conventions. A model never trained with
instructions (all-MiniLM-L6-v2) may gain nothing: the no-prompt pair is always
a candidate, so the choice is never worse on dev than the base model, and the
report says what each candidate scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.retrieval.cache import EmbeddingCache
from domainfit.retrieval.dense import encode_texts
from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.train.devscore import DevSet

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: Built-in (query prompt, document prompt) templates: none, E5's, BGE's, Nomic's, a plain question cue.
BUILTIN_PROMPTS: tuple[tuple[str, str], ...] = (
    ("", ""),
    ("query: ", "passage: "),
    ("Represent this sentence for searching relevant passages: ", ""),
    ("search_query: ", "search_document: "),
    ("question: ", ""),
)


@dataclass
class PromptChoice:
    """The prompts chosen on dev, and every candidate's dev NDCG@10."""

    query_prompt: str
    document_prompt: str
    dev_ndcg10: float
    base_dev_ndcg10: float
    candidates: list[dict[str, Any]] = field(default_factory=list)


def prompt_candidates(user: Sequence[tuple[str, str]], configured: tuple[str, str]) -> list[tuple[str, str]]:
    """Return the candidates to try, the user's first, without duplicates; the no-prompt pair is always in."""
    out: list[tuple[str, str]] = []
    for pair in [*user, configured, *BUILTIN_PROMPTS]:
        pair = (str(pair[0]), str(pair[1]))
        if pair not in out:
            out.append(pair)
    return out


def choose_prompts(
    model: SentenceTransformer,
    dev: DevSet,
    candidates: Sequence[tuple[str, str]],
    *,
    cache_dir: Path | None = None,
    batch_size: int = 32,
    text: TextConfig = DEFAULT_TEXT,
) -> PromptChoice:
    """Score every candidate on dev and return the best (ties: the earlier candidate, the no-prompt pair first).

    The documents are encoded once per distinct document prompt and the queries
    once per query prompt, through the embedding cache when ``cache_dir`` is given.
    The model's own ``prompts`` are restored afterwards.
    """
    from domainfit.core.models import model_fingerprint

    cache = EmbeddingCache(cache_dir, model_fingerprint(model)) if cache_dir is not None else None
    saved = dict(model.prompts or {})

    def encode(texts: list[str], prompt: str, what: str) -> Any:
        model.prompts = {**saved, "_trial": prompt}
        return encode_texts(
            model, texts, batch_size=batch_size, prompt_name="_trial" if prompt else None, cache=cache,
            description=f"prompt trial: {what}", text=text,
        )  # fmt: skip

    docs: dict[str, Any] = {}
    queries: dict[str, Any] = {}
    scored: list[dict[str, Any]] = []
    try:
        for q_prompt, d_prompt in candidates:
            if d_prompt not in docs:
                docs[d_prompt] = encode(dev.docs, d_prompt, "documents")
            if q_prompt not in queries:
                queries[q_prompt] = encode(dev.queries, q_prompt, "queries")
            score = dev.ndcg10(queries[q_prompt], docs[d_prompt])
            scored.append({"query_prompt": q_prompt, "document_prompt": d_prompt, "dev_ndcg@10": score})
    finally:
        model.prompts = saved
    base = next((s["dev_ndcg@10"] for s in scored if not s["query_prompt"] and not s["document_prompt"]), None)
    best = max(scored, key=lambda s: s["dev_ndcg@10"])  # max keeps the first of equal scores
    return PromptChoice(
        query_prompt=best["query_prompt"],
        document_prompt=best["document_prompt"],
        dev_ndcg10=best["dev_ndcg@10"],
        base_dev_ndcg10=base if base is not None else best["dev_ndcg@10"],
        candidates=scored,
    )
