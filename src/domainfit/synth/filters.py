"""Filters every synthetic or click query passes before it becomes training data.

In order (cheap first, each reports how many it removed per source):

1. ``length``: too few/many characters or words (words of the normalised text).
2. ``leakage``: the query equals or nearly copies a held-out (dev/test) query
   (normalised text, token Jaccard >= ``leakage_overlap``).
3. ``eval_document``: the positive is a document judged relevant for a held-out query.
4. ``duplicate`` / ``near_duplicate``: the same normalised text, or token Jaccard
   >= ``near_duplicate_overlap``, as a query kept earlier (click pairs of one
   query with different clicked documents are not duplicates of each other).
5. ``roundtrip``: the query does not retrieve its own document in the top
   ``roundtrip_k`` of BM25, the base dense model, either of them, or (``none``) no check.
   With a chunker (``[chunking]`` on), the dense model ranks documents by their best
   chunk, so a query made from a chunk deep inside a long document passes when its
   parent document comes back through any of its chunks (BM25 reads whole documents).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from domainfit.core.progress import progress_bar
from domainfit.core.types import Document
from domainfit.data.splits import normalise_text
from domainfit.synth.base import SyntheticQuery
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from domainfit.data.chunking import Chunker
    from domainfit.retrieval.dense import DenseRetriever

#: Filter names, in the order they run.
FILTERS: tuple[str, ...] = ("length", "leakage", "eval_document", "duplicate", "near_duplicate", "roundtrip")
_EXAMPLES_PER_FILTER = 5
_BATCH = 1024


@dataclass(frozen=True)
class FilterSettings:
    """Thresholds of the filters (see the module docstring)."""

    min_chars: int = 3
    max_chars: int = 300
    min_words: int = 1
    max_words: int = 40
    near_duplicate_overlap: float = 0.9
    leakage_overlap: float = 0.8
    roundtrip: Literal["bm25", "dense", "either", "none"] = "bm25"
    roundtrip_k: int = 10
    roundtrip_exempt: tuple[str, ...] = ()
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    text: TextConfig = DEFAULT_TEXT  # the [text] settings queries and documents are prepared under


@dataclass
class FilterResult:
    """The kept queries, and per filter how many were removed per source, with a few examples."""

    kept: list[SyntheticQuery]
    removed: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def drop(self, name: str, query: SyntheticQuery, detail: str = "") -> None:
        """Record that filter ``name`` removed ``query``."""
        per_source = self.removed.setdefault(name, {})
        per_source[query.source] = per_source.get(query.source, 0) + 1
        shown = self.examples.setdefault(name, [])
        if len(shown) < _EXAMPLES_PER_FILTER:
            example = {"text": query.text, "doc_id": query.doc_id, "source": query.source}
            shown.append({**example, "why": detail} if detail else example)

    def total(self, name: str) -> int:
        """Return how many queries filter ``name`` removed."""
        return sum(self.removed.get(name, {}).values())


def _tokens(text: str) -> frozenset[str]:
    """Return the token set of a text after `normalise_text`."""
    return frozenset(normalise_text(text).split())


class _NearDuplicates:
    """Queries kept so far, searchable for an exact (normalised) or near (token Jaccard) duplicate.

    Every token of a kept query is indexed; a probe looks up only the rarest
    ``|x| - ceil(t|x|) + 1`` tokens of the new query, which cannot miss a set
    with Jaccard >= t (such a set shares at least ``ceil(t|x|)`` of its tokens).
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._exact: dict[str, list[int]] = defaultdict(list)
        self._sets: list[frozenset[str]] = []
        self._queries: list[SyntheticQuery] = []
        self._postings: dict[str, list[int]] = defaultdict(list)

    @staticmethod
    def _compatible(a: SyntheticQuery, b: SyntheticQuery) -> bool:
        """Two click pairs of one query with different documents are both kept (several clicked results)."""
        return a.source == b.source == "clicks" and a.doc_id != b.doc_id

    def check(self, query: SyntheticQuery) -> tuple[str, SyntheticQuery] | None:
        """Return ("duplicate" | "near_duplicate", the earlier query) or None when ``query`` is new."""
        norm = normalise_text(query.text)
        for k in self._exact.get(norm, ()):
            if not self._compatible(query, self._queries[k]):
                return "duplicate", self._queries[k]
        tokens = frozenset(norm.split())
        if not tokens:
            return None
        need = max(1, math.ceil(self.threshold * len(tokens) - 1e-9))
        prefix = sorted(tokens, key=lambda t: (len(self._postings.get(t, ())), t))[: len(tokens) - need + 1]
        for k in sorted({k for t in prefix for k in self._postings.get(t, ())}):
            other = self._sets[k]
            inter = len(tokens & other)
            if inter >= self.threshold * (len(tokens) + len(other) - inter) - 1e-9 and not self._compatible(
                query, self._queries[k]
            ):
                return "near_duplicate", self._queries[k]
        return None

    def add(self, query: SyntheticQuery) -> None:
        """Index a kept query."""
        norm = normalise_text(query.text)
        k = len(self._queries)
        self._queries.append(query)
        self._sets.append(frozenset(norm.split()))
        self._exact[norm].append(k)
        for token in self._sets[k]:
            self._postings[token].append(k)


def _length_ok(query: SyntheticQuery, s: FilterSettings) -> bool:
    """Return True when the query's characters and normalised words are within the limits."""
    text = query.text.strip()
    words = len(normalise_text(text).split())
    return s.min_chars <= len(text) <= s.max_chars and s.min_words <= words <= s.max_words


def _cheap_filters(
    queries: Sequence[SyntheticQuery],
    settings: FilterSettings,
    held_out: Mapping[str, tuple[str, str]],
    eval_documents: frozenset[str],
    result: FilterResult,
) -> list[SyntheticQuery]:
    """Run the length, leakage, eval-document and duplicate filters; return the survivors in order."""
    from domainfit.synth.datasets import NearDuplicateIndex

    leaks = NearDuplicateIndex(held_out, settings.leakage_overlap) if held_out else None
    seen = _NearDuplicates(settings.near_duplicate_overlap)
    kept: list[SyntheticQuery] = []
    with progress_bar("filtering queries", len(queries)) as advance:
        for query in queries:
            advance(1)
            if not _length_ok(query, settings):
                result.drop("length", query)
                continue
            found = leaks.match(query.text) if leaks is not None else None
            if found is not None:
                how = "same text as" if found.identical else f"token Jaccard {found.jaccard:.2f} with"
                result.drop("leakage", query, f"{how} {found.split} query {found.held_out_id}")
                continue
            if query.doc_id in eval_documents:
                result.drop("eval_document", query, "positive of a held-out query")
                continue
            duplicate = seen.check(query)
            if duplicate is not None:
                result.drop(duplicate[0], query, f"{duplicate[1].source} query {duplicate[1].text!r:.80}")
                continue
            seen.add(query)
            kept.append(query)
    return kept


def bm25_hits(
    corpus: Mapping[str, Document], queries: Sequence[SyntheticQuery], k: int, s: FilterSettings
) -> list[bool]:
    """Return, for each query, whether BM25 over ``corpus`` ranks its document in the top ``k`` (with a score > 0)."""
    from domainfit.retrieval.lexical import BM25Retriever

    if not queries:
        return []
    bm25 = BM25Retriever(k1=s.bm25_k1, b=s.bm25_b, text=s.text)
    bm25.index(corpus)
    position = {doc_id: n for n, doc_id in enumerate(corpus)}
    hits: list[bool] = []
    with progress_bar("round trip (bm25)", len(queries)) as advance:
        for start in range(0, len(queries), _BATCH):
            batch = queries[start : start + _BATCH]
            idx, scores = bm25.search_texts([q.text for q in batch], k)
            for row, query in enumerate(batch):
                target = position[query.doc_id]
                hits.append(any(int(i) == target and sc > 0 for i, sc in zip(idx[row], scores[row], strict=True)))
            advance(len(batch))
    return hits


def dense_hits(
    dense: DenseRetriever,
    corpus: Mapping[str, Document],
    queries: Sequence[SyntheticQuery],
    k: int,
    chunker: Chunker | None = None,
) -> list[bool]:
    """Return, for each query, whether the dense retriever ranks its document in the top ``k`` of ``corpus``.

    With a ``chunker``, documents are ranked by their best chunk (`ChunkedDenseRetriever`, ``max``).
    """
    from domainfit.retrieval.dense import exact_search

    if not queries:
        return []
    if chunker is not None:
        from domainfit.retrieval.chunked import ChunkedDenseRetriever

        chunked = ChunkedDenseRetriever(dense, chunker, aggregate="max")
        chunked.index(corpus)
        run = chunked.search({str(n): q.text for n, q in enumerate(queries)}, k)
        return [q.doc_id in run[str(n)] for n, q in enumerate(queries)]
    position = {doc_id: n for n, doc_id in enumerate(corpus)}
    documents = dense.encode_documents([d.full_text() for d in corpus.values()])
    vectors = dense.encode_queries([q.text for q in queries])
    hits: list[bool] = []
    for start in range(0, len(queries), _BATCH):
        idx, _ = exact_search(vectors[start : start + _BATCH], documents, k, dense.backend)
        for row, query in enumerate(queries[start : start + _BATCH]):
            hits.append(position[query.doc_id] in set(idx[row].tolist()))
    return hits


def _roundtrip(
    queries: list[SyntheticQuery],
    corpus: Mapping[str, Document],
    settings: FilterSettings,
    dense: Callable[[], DenseRetriever] | None,
    result: FilterResult,
    chunker: Chunker | None = None,
) -> list[SyntheticQuery]:
    """Keep the queries whose document comes back in the top k (exempt sources always pass)."""
    method = settings.roundtrip
    checked = [q for q in queries if q.source not in settings.roundtrip_exempt]
    if method == "none" or not checked:
        return queries
    passed = [False] * len(checked)
    if method in ("bm25", "either"):
        passed = bm25_hits(corpus, checked, settings.roundtrip_k, settings)
    if method in ("dense", "either"):
        if dense is None:
            raise ValueError(f"round trip {method!r} needs a dense retriever")
        todo = [n for n, ok in enumerate(passed) if not ok]
        found = dense_hits(dense(), corpus, [checked[n] for n in todo], settings.roundtrip_k, chunker)
        for n, ok in zip(todo, found, strict=True):
            passed[n] = ok
    verdict = {id(q): ok for q, ok in zip(checked, passed, strict=True)}
    kept = []
    for query in queries:
        if verdict.get(id(query), True):
            kept.append(query)
        else:
            result.drop("roundtrip", query, f"{method} does not rank {query.doc_id} in the top {settings.roundtrip_k}")
    return kept


def apply_filters(
    queries: Sequence[SyntheticQuery],
    corpus: Mapping[str, Document],
    settings: FilterSettings,
    *,
    held_out: Mapping[str, tuple[str, str]] | None = None,
    eval_documents: frozenset[str] = frozenset(),
    dense: Callable[[], DenseRetriever] | None = None,
    chunker: Chunker | None = None,
) -> FilterResult:
    """Run every filter over ``queries`` (earlier queries win duplicate ties); return the kept ones and the counts.

    Inputs: the queries in priority order, the whole corpus (round-trip
    retrieval runs over all of it), the settings, the held-out queries as
    ``{query_id: (split, text)}``, the documents that are positives of held-out
    queries, and a function returning the dense retriever (called only when
    the dense round trip runs), and the chunker of long documents when chunking
    is on (the dense round trip then ranks documents by their best chunk).
    Output: a `FilterResult` whose ``removed`` has every filter name of
    `FILTERS` (zero counts included).
    """
    result = FilterResult(kept=[], removed={name: {} for name in FILTERS})
    kept = _cheap_filters(queries, settings, held_out or {}, eval_documents, result)
    result.kept = _roundtrip(kept, corpus, settings, dense, result, chunker)
    return result


def counts_by_source(queries: Sequence[SyntheticQuery]) -> dict[str, int]:
    """Return ``{source: number of queries}`` in first-seen order."""
    return dict(Counter(q.source for q in queries))
