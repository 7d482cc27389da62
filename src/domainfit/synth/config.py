"""Settings of the ``synth`` stage (``[synth]``, ``[synth.llm]`` and ``[synth.clicks]`` in ``domainfit.toml``).

Also the shared chat-endpoint settings (`ChatEndpointConfig`) and those of
LLM-written hard negatives (`LLMNegativesConfig`, ``[mine.llm]``).

Imported by `domainfit.config`, so this module only imports pydantic and the standard library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domainfit.core.models import DEFAULT_MODEL

#: The offline generators, in the order their queries are written.
OFFLINE_GENERATORS: tuple[str, ...] = ("title", "heading", "cloze", "salient")
Generator = Literal["title", "heading", "cloze", "salient"]
RoundTrip = Literal["bm25", "dense", "either", "none"]
SourceName = Literal["title", "heading", "cloze", "salient", "llm", "clicks"]

DEFAULT_PROMPT = (
    "You write the search queries that people type into the internal search engine of this organisation.\n"
    "Write {n} different queries that the document below answers, one per line, without numbering.\n"
    "Most should be short keyword queries of 2 to 6 words that reuse the document's own terms, error codes, "
    "product names and identifiers; at most one may be a full question.\n\n"
    "Title: {title}\n"
    "Document:\n{text}\n\n"
    "Queries:"
)


DEFAULT_NEGATIVES_PROMPT = (
    "You help train a search engine. Below are a search query and the passage that answers it.\n"
    "Write {n} different passages that a search engine could easily confuse with the answer: same topic, "
    "same vocabulary and style, but they must NOT answer the query (wrong product, wrong error code, "
    "wrong procedure, or a related but different question). Each passage is 2 to 4 sentences.\n"
    "Separate the passages with a blank line; no numbering, no commentary.\n\n"
    "Query: {query}\n"
    "Answer passage:\n{positive}\n\n"
    "Passages:"
)


class _Strict(BaseModel):
    """Base for config sections: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ChatEndpointConfig(_Strict):
    """How to reach an OpenAI-compatible chat-completions endpoint (off unless ``base_url`` is set).

    Shared by every LLM client of domainfit: the endpoint, model, sampling,
    concurrency, retries and prices. Subclasses add their prompt and limits.
    """

    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1 ('/chat/completions' is appended)")
    model: str = Field("gpt-4o-mini", min_length=1)
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key (never stored)")
    system: str | None = Field(None, description="optional system message")
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(200, ge=1)
    concurrency: int = Field(4, ge=1, le=64, description="requests in flight")
    timeout: float = Field(60.0, gt=0, description="seconds per request")
    max_retries: int = Field(5, ge=0, le=20, description="retries on 429, 5xx, timeouts and connection errors")
    backoff: float = Field(1.0, ge=0, description="first retry delay in seconds; doubles each retry")
    max_backoff: float = Field(60.0, ge=0, description="longest wait between retries (Retry-After included)")
    price_prompt_per_1k: float = Field(0.0, ge=0, description="$ per 1,000 prompt tokens")
    price_completion_per_1k: float = Field(0.0, ge=0, description="$ per 1,000 completion tokens")

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        """Accept only http(s) URLs."""
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r:.60}")
        return value


class LLMConfig(ChatEndpointConfig):
    """LLM doc2query through an OpenAI-compatible chat-completions endpoint (off unless ``base_url`` is set)."""

    prompt: str = Field(DEFAULT_PROMPT, description="template with {title}, {text} and {n}")
    queries_per_document: int = Field(3, ge=1, le=50, description="the {n} of the prompt")
    max_document_chars: int = Field(4000, ge=100, description="document text is cut to this many characters")
    max_documents: int | None = Field(None, ge=1, description="send at most this many documents (seeded sample)")

    @field_validator("prompt")
    @classmethod
    def _has_text(cls, value: str) -> str:
        """Require ``{text}``: the model must see the document."""
        if "{text}" not in value:
            raise ValueError("the prompt template must contain {text}")
        return value


class LLMNegativesConfig(ChatEndpointConfig):
    """Hard negatives written by an LLM: passages that look relevant to a query but do not answer it.

    Off unless ``base_url`` is set; the ``mine`` stage uses it when its
    ``sources`` include ``"llm"``. The prompt template takes ``{query}``,
    ``{positive}`` and ``{n}``.
    """

    prompt: str = Field(DEFAULT_NEGATIVES_PROMPT, description="template with {query}, {positive} and {n}")
    passages_per_pair: int = Field(3, ge=1, le=20, description="the {n} of the prompt")
    max_tokens: int = Field(800, ge=1)
    max_positive_chars: int = Field(2000, ge=100, description="the positive is cut to this many characters")
    min_words: int = Field(5, ge=1, description="shorter generated passages are ignored")

    @field_validator("prompt")
    @classmethod
    def _has_query_and_positive(cls, value: str) -> str:
        """Require ``{query}`` and ``{positive}``: the model must see both."""
        missing = [name for name in ("{query}", "{positive}") if name not in value]
        if missing:
            raise ValueError(f"the prompt template must contain {' and '.join(missing)}")
        return value


class ClicksConfig(_Strict):
    """A search log with clicks turned into (query, clicked document) pairs (off unless ``path`` is set)."""

    path: Path | None = Field(None, description="JSONL: query, shown, clicked, optional dwell, timestamp, session")
    min_clicks: int = Field(1, ge=1, description="clicks a (query, document) needs to become a pair")
    min_dwell: float | None = Field(
        None, ge=0, description="seconds; shorter clicks are ignored (unknown dwell counts)"
    )
    skip_above: bool = Field(True, description="documents shown above a click but not clicked become negatives")
    max_negatives: int = Field(8, ge=0, description="skip-above negatives kept per pair (most skipped first)")


class SynthConfig(_Strict):
    """Settings of the ``synth`` stage: generators, source documents, filters and leakage checks."""

    generators: list[Generator] = Field(
        default_factory=lambda: list(OFFLINE_GENERATORS),  # type: ignore[arg-type]
        description="offline generators to run; the LLM runs when llm.base_url is set, clicks when clicks.path is",
    )
    seed: int = 13
    max_documents: int | None = Field(None, ge=1, description="generate from at most this many documents (sample)")
    exclude_eval_documents: bool = Field(True, description="never generate from positives of held-out queries")
    train_split: str = Field("train", description="qrels split trained on; every other split is held out")
    # generators
    heading_max_per_document: int = Field(8, ge=1)
    heading_min_section_words: int = Field(5, ge=1)
    cloze_per_document: int = Field(1, ge=1, le=10)
    cloze_min_words: int = Field(4, ge=1)
    cloze_max_words: int = Field(40, ge=2)
    salient_per_document: int = Field(2, ge=1, le=10)
    salient_min_words: int = Field(2, ge=1)
    salient_max_words: int = Field(5, ge=1)
    # filters
    min_chars: int = Field(3, ge=1)
    max_chars: int = Field(300, ge=2)
    min_words: int = Field(1, ge=1)
    max_words: int = Field(40, ge=1)
    near_duplicate_overlap: float = Field(0.9, gt=0, le=1, description="token Jaccard of near-duplicate queries")
    leakage_overlap: float = Field(0.8, gt=0, le=1, description="token Jaccard at which a query leaks a held-out one")
    roundtrip: RoundTrip = Field("bm25", description="keep a query only if this retriever finds its document")
    roundtrip_k: int = Field(10, ge=1, le=1000)
    roundtrip_exempt: list[SourceName] = Field(default_factory=list, description="sources the round trip skips")
    model: str = Field(DEFAULT_MODEL, description="base bi-encoder of the dense round trip")
    batch_size: int = Field(32, ge=1)
    max_seq_length: int | None = Field(256, ge=8)
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    clicks: ClicksConfig = Field(default_factory=ClicksConfig)

    @model_validator(mode="after")
    def _consistent(self) -> SynthConfig:
        """Check limits against each other (`run_synth` checks that at least one source is on)."""
        if len(set(self.generators)) != len(self.generators):
            raise ValueError(f"generators repeat a name: {self.generators}")
        if self.min_chars > self.max_chars or self.min_words > self.max_words:
            raise ValueError("min_chars/min_words must not exceed max_chars/max_words")
        if self.cloze_min_words > self.cloze_max_words or self.salient_min_words > self.salient_max_words:
            raise ValueError("cloze/salient min_words must not exceed their max_words")
        return self

    def sources(self) -> list[str]:
        """Return the sources this config runs, in priority and output order: clicks, the LLM, the generators."""
        names = ["clicks"] if self.clicks.path is not None else []
        if self.llm.base_url is not None:
            names.append("llm")
        return [*names, *self.generators]
