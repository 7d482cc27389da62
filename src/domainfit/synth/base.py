"""The generator interface of the ``synth`` stage and the query record every generator returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any, ClassVar

from domainfit.core.types import Document
from domainfit.text.config import DEFAULT_TEXT, TextConfig

#: Called with the number of documents just processed (drives a progress bar).
Advance = Callable[[int], None]


def _no_progress(n: int) -> None:
    """Ignore progress."""


@dataclass
class SyntheticQuery:
    """One generated (query, positive) pair.

    ``text`` is the query, ``doc_id`` the corpus document it was made from,
    ``source`` the generator (``title``, ``heading``, ``cloze``, ``salient``,
    ``llm`` or ``clicks``). ``positive_text`` replaces the document's text as
    the positive when the generator made its own (a section, a passage
    without the cloze sentence). ``negatives`` are document ids known not to
    answer the query (skip-above documents of a click log). ``weight`` is 1.0,
    or the click count for click pairs. ``metadata`` is free-form detail for
    reports (never written to the output contract). The query and positive
    texts are prepared on creation under ``settings`` (the ``[text]`` section;
    not a field), like every text that enters domainfit (generated text included).
    """

    text: str
    doc_id: str
    source: str
    positive_text: str | None = None
    negatives: list[str] = field(default_factory=list)
    weight: float = 1.0
    metadata: dict[str, Any] = field(default_factory=dict)
    settings: InitVar[TextConfig] = DEFAULT_TEXT

    def __post_init__(self, settings: TextConfig) -> None:
        """Prepare the query and positive texts under the text settings."""
        self.text = settings.prepare(self.text)
        if self.positive_text is not None:
            self.positive_text = settings.prepare(self.positive_text)

    def to_record(self, ident: str) -> dict[str, Any]:
        """Return the line written to ``synth/queries.jsonl`` for this query under id ``ident``.

        A query whose positive is a chunk of a long document also carries ``chunk``
        (the chunk's id and offsets in ``doc_id``, see `domainfit.synth.chunked`).
        """
        record: dict[str, Any] = {
            "_id": ident,
            "text": self.text,
            "doc_id": self.doc_id,
            "source": self.source,
            "positive_text": self.positive_text,
            "negatives": list(self.negatives),
            "weight": float(self.weight),
        }
        if "chunk" in self.metadata:
            record["chunk"] = self.metadata["chunk"]
        return record


class QueryGenerator(ABC):
    """Base class of the query generators: one class per method, each with a ``name``.

    Inputs: the documents to generate from (``generate``); optionally the
    whole corpus first (``fit``), for generators that need corpus statistics.
    Output: `SyntheticQuery` objects, deterministic for the same inputs and seed,
    their texts prepared under the generator's ``text`` settings (`with_text`).
    Example: ``gen = TitleGenerator(); gen.fit(corpus); queries = gen.generate(docs)``.
    """

    name: ClassVar[str]
    #: The ``[text]`` settings the generated texts are prepared under.
    text: TextConfig = DEFAULT_TEXT

    def with_text(self, settings: TextConfig) -> QueryGenerator:
        """Prepare the generated texts under ``settings`` from now on; return the generator."""
        self.text = settings
        return self

    def query(self, text: str, doc_id: str, **fields: Any) -> SyntheticQuery:
        """Return a `SyntheticQuery` of this generator, prepared under its text settings."""
        return SyntheticQuery(text, doc_id, self.name, **fields, settings=self.text)

    def fit(self, corpus: Sequence[Document]) -> None:  # noqa: B027 - an optional hook, not abstract
        """Learn corpus statistics (document frequencies); the default needs none."""

    @abstractmethod
    def generate(self, docs: Sequence[Document], advance: Advance = _no_progress) -> list[SyntheticQuery]:
        """Return the queries made from ``docs``, calling ``advance(n)`` as documents are done."""

    @abstractmethod
    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob of the generator, for summaries and reports."""
