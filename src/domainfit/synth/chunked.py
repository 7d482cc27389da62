"""Chunk-level training data: which documents are too long for the window, and their best chunks.

Shared by ``synth`` (queries generated per chunk of a long document, the chunk as the
positive), ``mine`` (the positive and the negatives of a long document become its
best-matching chunk under the base model) and ``train`` when it trains straight from
the train qrels (no ``mine`` dataset: the positive becomes the best chunk too).

A document is *long* when its text as the encoder sees it (title and text, document
prompt and special tokens included) exceeds the model's ``max_seq_length``: only then
would the encoder silently read just its beginning. Documents that fit stay whole, so
a corpus without long documents gives exactly the training data it gave without chunking.

With ``[chunking] method = "auto"`` the chunker is ``recursive`` when at least one
document of the corpus is long, else chunking stays off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from domainfit.data.chunking import Chunk, Chunker, max_seq_length, token_lengths
from domainfit.data.config import ChunkingConfig
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from domainfit.core.types import Document
    from domainfit.retrieval.dense import DenseRetriever
    from domainfit.synth.datasets import TrainingPair


def chunking_on(config: ChunkingConfig | None) -> bool:
    """Return True when a ``[chunking]`` section asks for chunking (any method but ``none``)."""
    return config is not None and config.method != "none"


def long_documents(model: Any, corpus: Mapping[str, Document] | Iterable[Document], prompt: str = "") -> list[str]:
    """Return the ids of the documents the model would truncate, in corpus order.

    Inputs: a sentence-transformers model (its tokenizer and ``max_seq_length``), the
    corpus and the document prompt the model prepends. Output: the ids of the documents
    whose encoded text (``prompt + full_text()``, special tokens included) is longer than
    the window.
    """
    docs = list(corpus.values()) if isinstance(corpus, Mapping) else list(corpus)
    if not docs:
        return []
    limit = max_seq_length(model)
    lengths = token_lengths(model.tokenizer, [prompt + d.full_text() for d in docs])
    return [d.id for d, n in zip(docs, lengths, strict=True) if n > limit]


@dataclass
class ChunkPlan:
    """The resolved chunking of one stage: the chunker (None when off), the long documents and a summary.

    ``summary()`` is what stages record in their ``summary.json``: the ``[chunking]``
    settings, the method it resolved to, the chunker's knobs and the counts.
    """

    settings: ChunkingConfig
    method: str
    chunker: Chunker | None
    long_ids: list[str]
    n_documents: int
    counts: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Return the JSON-ready record of this plan (settings, resolved method, chunker, counts)."""
        return {
            "settings": self.settings.model_dump(),
            "resolved_method": self.method,
            "chunker": self.chunker.get_config_dict() if self.chunker is not None else None,
            "documents": self.n_documents,
            "long_documents": len(self.long_ids),
            **self.counts,
        }


def document_prompt(dense: DenseRetriever) -> str:
    """Return the prompt text the dense retriever puts in front of documents (empty when none)."""
    return (dense.model.prompts or {}).get(dense.document_prompt_name or "") or ""


def plan_chunking(model: Any, config: ChunkingConfig, corpus: Mapping[str, Document], prompt: str = "") -> ChunkPlan:
    """Resolve ``[chunking]`` against a corpus and a model.

    Inputs: the model (tokenizer and window), the settings (method not ``none``), the
    corpus and the document prompt. Output: a `ChunkPlan`; its chunker is None when
    ``auto`` finds no long document (chunking stays off).
    """
    long_ids = long_documents(model, corpus, prompt)
    method = config.method
    if method == "auto":
        method = "recursive" if long_ids else "none"
    chunker = Chunker.for_model(model, config, method=method, prompt=prompt) if method != "none" else None
    return ChunkPlan(config, method, chunker, long_ids if chunker is not None else [], len(corpus))


class ChunkVectors:
    """The chunks of some documents and their base-model vectors: the best chunk of a document for a query.

    Inputs: the dense retriever of the base model (its embedding cache is used), the
    chunker and the documents to chunk. Example:
    ``ChunkVectors(dense, plan.chunker, [corpus[d] for d in plan.long_ids]).best("d1", query_vector)``.
    """

    def __init__(self, dense: DenseRetriever, chunker: Chunker, docs: Sequence[Document]) -> None:
        self.chunks: list[Chunk] = chunker.chunk_corpus(list(docs)) if docs else []
        texts = [c.encode_text() for c in self.chunks]
        self.vectors = (
            np.asarray(dense.encode_documents(texts, what="chunks"), dtype=np.float32)
            if texts
            else np.zeros((0, 1), dtype=np.float32)
        )
        self.ranges: dict[str, tuple[int, int]] = {}
        for n, chunk in enumerate(self.chunks):
            start, _ = self.ranges.get(chunk.doc_id, (n, n))
            self.ranges[chunk.doc_id] = (start, n + 1)

    def __contains__(self, doc_id: object) -> bool:
        """Return True when the document was chunked here."""
        return doc_id in self.ranges

    def best_row(self, doc_id: str, query: np.ndarray) -> tuple[int, float]:
        """Return the row (into ``chunks``) of the document's chunk closest to ``query`` and its cosine."""
        start, end = self.ranges[doc_id]
        scores = self.vectors[start:end] @ query
        k = int(np.argmax(scores))
        return start + k, float(scores[k])

    def best(self, doc_id: str, query: np.ndarray) -> tuple[Chunk, float]:
        """Return the document's chunk closest to ``query`` (an L2-normalised vector) and its cosine."""
        row, score = self.best_row(doc_id, query)
        return self.chunks[row], score


# ----------------------------------------------------------------------------- synth: queries per chunk


def _stand_in(chunk: Chunk, title: str) -> Document:
    """Return a chunk as a document of its own: id the chunk id, title the chunk's prefix (or the title), text."""
    from domainfit.core.types import Document

    heading = chunk.prefix.rstrip("\n")
    return Document(id=chunk.id, title=heading or title, text=chunk.text, metadata={"parent": chunk.doc_id})


class ChunkedSources:
    """What the offline generators of ``synth`` read when chunking is on, and how their queries map back.

    Long documents (see `long_documents`) are split by the chunker; each chunk becomes a
    stand-in document (its prefix, the title and heading trail, as its title) so the
    ``cloze`` and ``salient`` generators make queries from one chunk at a time, deep
    chunks included. `remap` turns such a query back into one about the parent
    document whose positive is the chunk (``positive_text``; the ``cloze`` positive is
    the chunk without the query sentence). ``title`` and ``heading`` queries are made
    from whole documents; for a long document their positive becomes its first chunk
    (title) or the first chunk of the heading's section (heading).

    Inputs: the chunker, the whole corpus and the ids of its long documents.
    """

    #: Generators that read stand-in chunk documents instead of long documents.
    PER_CHUNK: tuple[str, ...] = ("cloze", "salient")

    def __init__(
        self,
        chunker: Chunker,
        corpus: Mapping[str, Document],
        long_ids: Iterable[str],
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        long = set(long_ids)
        self.text = text
        self.corpus = corpus
        chunks = chunker.chunk_corpus([d for d in corpus.values() if d.id in long])
        self.by_doc: dict[str, list[Chunk]] = {}
        for chunk in chunks:
            self.by_doc.setdefault(chunk.doc_id, []).append(chunk)
        self.by_id = {c.id: c for c in chunks}

    @property
    def n_chunks(self) -> int:
        """Return how many chunks the long documents were split into."""
        return len(self.by_id)

    def units(self, docs: Sequence[Document]) -> list[Document]:
        """Return ``docs`` with every long document replaced by its chunks as stand-in documents."""
        out: list[Document] = []
        for doc in docs:
            chunks = self.by_doc.get(doc.id)
            if chunks:
                out.extend(_stand_in(c, doc.title) for c in chunks)
            else:
                out.append(doc)
        return out

    def _heading_chunk(self, doc_id: str, heading: str) -> Chunk | None:
        """Return the first chunk of the section under ``heading`` (None when no chunk carries that heading)."""
        from domainfit.data.splits import normalise_text

        want = normalise_text(heading)
        for chunk in self.by_doc.get(doc_id, []):
            if chunk.heading and normalise_text(chunk.heading.split(" > ")[-1]) == want:
                return chunk
        return None

    def remap(self, queries: Sequence[Any], source: str) -> None:
        """Point queries made from chunks (or from long documents) at their parent, with the chunk as positive.

        Input: the `SyntheticQuery` objects of one generator and its name; changed in place.
        Each changed query gets ``metadata["chunk"]`` (the chunk's place in its document).
        """
        for query in queries:
            chunk = self.by_id.get(query.doc_id)
            if chunk is not None:
                query.doc_id = chunk.doc_id
                if query.positive_text is None:
                    query.positive_text = self.text.prepare(chunk.encode_text())
            elif query.doc_id in self.by_doc and source in ("title", "heading"):
                found = self.by_doc[query.doc_id][0] if source == "title" else None
                found = found or self._heading_chunk(query.doc_id, query.text)
                if found is None:
                    continue
                chunk = found
                query.positive_text = self.text.prepare(chunk.encode_text())
            else:
                continue
            query.metadata["chunk"] = chunk.to_json()


# ----------------------------------------------------------------------------- mine and train: best chunks


def _best_chunk_positives(
    pairs: list[TrainingPair], chunks: ChunkVectors, encode_queries: Any
) -> tuple[list[TrainingPair], dict[int, str], dict[str, int]]:
    """Give every pair without its own positive text whose document is chunked its best chunk as positive.

    Inputs: the pairs, the chunk vectors of the long documents and the base model's
    query encoder. Output: the pairs (replaced ones with ``positive_text`` set to the
    chunk's encoded text), pair index -> chunk id, and how many were replaced per origin.
    """
    from dataclasses import replace

    todo = [n for n, p in enumerate(pairs) if p.positive_text is None and p.doc_id in chunks]
    out = list(pairs)
    chosen: dict[int, str] = {}
    counts = {"labelled": 0, "synthetic": 0}
    if not todo:
        return out, chosen, counts
    vectors = encode_queries([pairs[n].query for n in todo])
    for n, vector in zip(todo, vectors, strict=True):
        chunk, _ = chunks.best(pairs[n].doc_id, vector)
        out[n] = replace(pairs[n], positive_text=chunk.encode_text())
        chosen[n] = chunk.id
        counts[pairs[n].origin] += 1
    return out, chosen, counts


def chunk_pair_positives(
    dense: DenseRetriever,
    chunking: ChunkingConfig | None,
    corpus: Mapping[str, Document],
    pairs: list[TrainingPair],
) -> tuple[list[TrainingPair], ChunkVectors | None, dict[int, str], ChunkPlan | None]:
    """Resolve ``[chunking]``, encode the chunks of the long documents and give long positives their best chunk.

    Inputs: the base model's dense retriever (tokenizer, window, embedding cache), the
    settings, the corpus and the training pairs. A pair that has no ``positive_text`` of
    its own and whose document is long gets the document's chunk closest to its query.
    Output: the pairs, the chunk vectors (None when chunking is off or finds no long
    document), pair index -> positive chunk id, and the plan (None when off; its
    ``counts`` hold the chunks and the replaced positives per origin).
    """
    if not chunking_on(chunking):
        return pairs, None, {}, None
    assert chunking is not None
    plan = plan_chunking(dense.model, chunking, corpus, document_prompt(dense))
    if plan.chunker is None or not plan.long_ids:
        plan.counts = {"chunks": 0, "positives_replaced": {"labelled": 0, "synthetic": 0}}
        return pairs, None, {}, plan
    chunks = ChunkVectors(dense, plan.chunker, [corpus[d] for d in plan.long_ids])
    pairs, chosen, counts = _best_chunk_positives(pairs, chunks, dense.encode_queries)
    plan.counts = {"chunks": len(chunks.chunks), "positives_replaced": counts}
    return pairs, chunks, chosen, plan
