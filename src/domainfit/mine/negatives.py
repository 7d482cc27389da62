"""Hard-negative mining over several sources, with false-negative filtering.

Inputs: (query, positive) `TrainingPair` objects, the documents to the miner
(ids, texts and the L2-normalised vectors of a base bi-encoder), an encoder
for queries and free-text positives, and `MiningSettings`. Output
(`MiningResult`): for every pair, ``n`` negative documents with their source,
rank and scores, plus per-source counts of what each filter removed.

Sources, mixed with a count per source:

* ``dense``: nearest documents under the base model (exact search, queries in batches),
* ``bm25``: best BM25 documents (bm25s),
* ``clicks``: click skip-above candidates that came with the pair,
* ``llm``: passages an LLM wrote for the pair (texts, not corpus documents:
  given to `NegativeMiner.mine`, see `domainfit.mine.llm_negatives`),
* ``random``: documents drawn uniformly.

``dense`` and ``bm25`` candidates come from the rank window
``range_min <= rank < range_max`` (0-based, counted after the query's labelled
positives are taken out). A negative is never the positive itself nor a
document labelled relevant for the query in any split. Likely false negatives
are dropped: documents whose normalised text equals the positive's, whose
base-model similarity is within ``absolute_margin`` / ``relative_margin`` of the
positive's (for ``llm`` passages also those whose token Jaccard with the
positive reaches ``near_duplicate_overlap``), and, with a cross-encoder, whose cross-encoder score is within the
cross-encoder margins of the positive's. Margins mean what they mean in
`sentence_transformers.util.mine_hard_negatives`: drop when
``score + absolute_margin > positive_score`` or when
``score > positive_score - abs(positive_score) * relative_margin``. With the
dense source alone, ``range_min=0`` and ``sampling="top"``, the negatives are
those of ``mine_hard_negatives`` (a test checks it). That function is not
called here because it works on texts, not document ids (it merges duplicate
texts and cannot leave out a query's positives from other splits), encodes
outside the workspace embedding cache and only prints what its filters removed.

With chunking (``chunks``: the base-model vectors of the chunks of the documents
longer than the model's window, see `domainfit.synth.chunked.ChunkVectors`), a long
candidate is represented by its chunk closest to the query: its similarity (for the
margins and the difficulty) is that chunk's, and the negative written to the
dataset is that chunk's text (``Negative.chunk``), not the document the encoder
would have truncated. Candidates are still ranked per document by the sources.

Memory: the document matrix (nd x d), the query and positive vectors (nq x d)
and one search block (a few queries x nd) at a time; never a query x corpus matrix.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from domainfit.core.progress import progress_bar
from domainfit.mine.false_negatives import CrossEncoderScorer, CrossScores, jaccard, text_hash, text_tokens
from domainfit.mine.llm_negatives import generated_id
from domainfit.mine.mining_types import (
    DEFAULT_SOURCES,
    SOURCES,
    Encoder,
    MinedExample,
    MiningResult,
    MiningSettings,
    Negative,
    SourceName,
    SourceStats,
)
from domainfit.retrieval.dense import exact_search
from domainfit.retrieval.lexical import BM25Retriever
from domainfit.synth.datasets import TrainingPair
from domainfit.text.config import DEFAULT_TEXT, TextConfig

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

    from domainfit.data.chunking import Chunk
    from domainfit.synth.chunked import ChunkVectors

__all__ = [
    "DEFAULT_SOURCES",
    "SOURCES",
    "Encoder",
    "MinedExample",
    "MiningResult",
    "MiningSettings",
    "Negative",
    "NegativeMiner",
    "SourceName",
    "SourceStats",
    "text_hash",
]

#: Bytes of scratch per (query, document) cell of a numpy search block (scores, negated copy, int64 ids).
_BYTES_PER_CELL = 24


@dataclass
class _Pool:
    """Candidates of one source for one pair, filtered, in the order they will be tried."""

    source: str
    idx: np.ndarray
    ranks: np.ndarray | None
    source_scores: np.ndarray | None
    sims: np.ndarray
    texts: list[str] | None = None
    cursor: int = 0
    chunk_rows: np.ndarray | None = None  # per candidate: row of its best chunk in `ChunkVectors`, -1 for none


class NegativeMiner:
    """Mines hard negatives for training pairs from a fixed set of documents.

    Inputs: document ids, their texts (what the negative columns will hold),
    their L2-normalised vectors under the base model (nd x d, float32), an
    `Encoder` for queries and free-text positives, the settings, an
    optional cross-encoder (anything with the ``CrossEncoder.predict`` API)
    and optionally the chunk vectors of the long documents (see the module docstring).
    Example: ``NegativeMiner(ids, texts, vectors, dense_retriever, MiningSettings()).mine(pairs, excluded)``.
    """

    def __init__(
        self,
        doc_ids: Sequence[str],
        doc_texts: Sequence[str],
        doc_vectors: np.ndarray,
        encoder: Encoder,
        settings: MiningSettings,
        *,
        cross_encoder: CrossEncoder | None = None,
        chunks: ChunkVectors | None = None,
        text: TextConfig = DEFAULT_TEXT,
    ) -> None:
        self.text = text
        if not len(doc_ids) == len(doc_texts) == doc_vectors.shape[0]:
            raise ValueError("doc_ids, doc_texts and doc_vectors must have one entry per document")
        self.doc_ids = list(doc_ids)
        self.doc_texts = doc_texts
        self.doc_vectors = np.ascontiguousarray(doc_vectors, dtype=np.float32)
        self.encoder = encoder
        self.settings = settings
        self.cross_encoder = cross_encoder
        self._position = {doc_id: n for n, doc_id in enumerate(self.doc_ids)}
        self._hashes = (
            np.fromiter((text_hash(t) for t in doc_texts), dtype=np.int64, count=len(self.doc_ids))
            if settings.drop_duplicates
            else None
        )
        self._bm25: BM25Retriever | None = None
        self._scorer = CrossEncoderScorer(cross_encoder, settings)
        self._generated: list[list[str]] = []
        self._generated_vectors: list[np.ndarray] = []
        self.chunks = chunks
        self._chunked = np.array([d in chunks for d in self.doc_ids], dtype=bool) if chunks is not None else None

    # ------------------------------------------------------------------ public

    def mine(
        self,
        pairs: Sequence[TrainingPair],
        excluded: Sequence[Collection[str]],
        generated: Sequence[Sequence[str]] | None = None,
    ) -> MiningResult:
        """Mine ``settings.negatives`` negatives for every pair.

        Inputs: the pairs, per pair the document ids that must never be its
        negatives (its labelled positives; the positive is always added), and,
        when the ``llm`` source is enabled, per pair the generated passages
        (candidate texts). Output: a `MiningResult`; pairs that end up with
        fewer negatives than asked (tiny corpus, strict filters) are listed in ``dropped``.
        """
        if len(pairs) != len(excluded):
            raise ValueError("need one exclusion set per pair")
        cfg = self.settings
        self._set_generated(pairs, generated)
        stats = {source: SourceStats() for source in cfg.enabled()}
        self._scorer.scored = 0
        if "bm25" in stats and self._bm25 is None:
            self._bm25 = BM25Retriever(k1=cfg.bm25_k1, b=cfg.bm25_b, text=self.text)
            self._bm25.index_texts(self.doc_ids, list(self.doc_texts))
        queries = self.encoder.encode_queries([p.query for p in pairs]) if pairs else np.zeros((0, 1), np.float32)
        positive_sims = self._positive_similarities(pairs, queries)
        examples: list[MinedExample] = []
        dropped: list[int] = []
        with progress_bar("mining negatives", len(pairs)) as advance:
            for start in range(0, len(pairs), cfg.query_batch):
                rows = range(start, min(start + cfg.query_batch, len(pairs)))
                exclusions = [self._exclusion(pairs[i], excluded[i]) for i in rows]
                ranked = self._search(pairs, queries, rows, max(len(e) for e in exclusions))
                for offset, i in enumerate(rows):
                    lists = {source: (idx[offset], scores[offset]) for source, (idx, scores) in ranked.items()}
                    example = self._mine_one(
                        i, pairs[i], queries[i], float(positive_sims[i]), exclusions[offset], lists, stats
                    )
                    if example is None:
                        dropped.append(i)
                    else:
                        examples.append(example)
                advance(len(rows))
        return MiningResult(examples, dropped, stats, cfg, self._scorer.scored)

    # ------------------------------------------------------------------ encoding and search

    def _set_generated(self, pairs: Sequence[TrainingPair], generated: Sequence[Sequence[str]] | None) -> None:
        """Keep the generated passages of each pair and their base-model vectors (encoded in one call)."""
        self._generated, self._generated_vectors = [], []
        if "llm" not in self.settings.sources:
            return
        if generated is None or len(generated) != len(pairs):
            raise ValueError("the llm source needs one list of generated passages per pair")
        self._generated = [list(texts) for texts in generated]
        flat = [text for texts in self._generated for text in texts]
        vectors = self.encoder.encode_documents(flat) if flat else np.zeros((0, self.doc_vectors.shape[1]))
        vectors = np.asarray(vectors, dtype=np.float32)
        offsets = np.cumsum([0, *(len(texts) for texts in self._generated)])
        self._generated_vectors = [vectors[offsets[n] : offsets[n + 1]] for n in range(len(self._generated))]

    def _positive_similarities(self, pairs: Sequence[TrainingPair], queries: np.ndarray) -> np.ndarray:
        """Cosine similarity of each query to its positive (document vector, or encoded ``positive_text``)."""
        sims = np.zeros(len(pairs), dtype=np.float32)
        free = [i for i, p in enumerate(pairs) if p.positive_text is not None]
        for i, pair in enumerate(pairs):
            if pair.positive_text is None:
                sims[i] = float(queries[i] @ self.doc_vectors[self._position[pair.doc_id]])
        if free:
            vectors = self.encoder.encode_documents([pairs[i].positive_text or "" for i in free])
            sims[free] = np.einsum("ij,ij->i", queries[free], vectors)
        return sims

    def _exclusion(self, pair: TrainingPair, excluded: Collection[str]) -> np.ndarray:
        """Sorted document positions a pair must never take as negatives."""
        docs = {pair.doc_id, *excluded}
        return np.array(sorted(self._position[d] for d in docs if d in self._position), dtype=np.int64)

    def _search(
        self, pairs: Sequence[TrainingPair], queries: np.ndarray, rows: range, most_excluded: int
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Ranked (positions, scores) of the dense and BM25 sources for one batch of pairs."""
        cfg = self.settings
        depth = min(cfg.range_max + most_excluded, len(self.doc_ids))
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if "dense" in cfg.sources:
            block = max(1, (cfg.block_mib << 20) // (len(self.doc_ids) * _BYTES_PER_CELL))
            out["dense"] = exact_search(
                queries[rows.start : rows.stop], self.doc_vectors, depth, cfg.search_backend, block=block
            )
        if "bm25" in cfg.sources and self._bm25 is not None:
            out["bm25"] = self._bm25.search_texts([pairs[i].query for i in rows], depth)
        return out

    # ------------------------------------------------------------------ one pair

    def _windowed(
        self, idx: np.ndarray, scores: np.ndarray, exclusion: np.ndarray, stats: SourceStats, *, positive_only: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Drop invalid hits and labelled positives, rank the rest, keep the rank window."""
        valid = idx >= 0
        if positive_only:
            valid &= scores > 0  # BM25 pads with zero-score documents that share no term
        idx, scores = idx[valid].astype(np.int64), scores[valid]
        stats.retrieved += len(idx)
        labelled = np.isin(idx, exclusion)
        stats.labelled_skipped += int(labelled.sum())
        idx, scores = idx[~labelled], scores[~labelled]
        lo, hi = self.settings.range_min, self.settings.range_max
        ranks = np.arange(len(idx))[lo:hi]
        stats.candidates += len(ranks)
        return idx[lo:hi], ranks, scores[lo:hi]

    def _unranked(
        self, idx: np.ndarray, exclusion: np.ndarray, stats: SourceStats
    ) -> tuple[np.ndarray, np.ndarray, None]:
        """Drop labelled positives from an unranked candidate list (clicks, random)."""
        stats.retrieved += len(idx)
        labelled = np.isin(idx, exclusion)
        stats.labelled_skipped += int(labelled.sum())
        idx = idx[~labelled]
        stats.candidates += len(idx)
        return idx, np.arange(len(idx)), None

    def _filter(
        self,
        source: str,
        found: tuple[np.ndarray, np.ndarray, np.ndarray | None],
        query: np.ndarray,
        positive_sim: float,
        positive_hash: int | None,
        stats: SourceStats,
    ) -> _Pool:
        """Apply the duplicate and similarity-margin filters; count what each removes."""
        idx, ranks, source_scores = found
        sims = self.doc_vectors[idx] @ query if len(idx) else np.zeros(0, dtype=np.float32)
        chunk_rows = self._best_chunks(idx, query, sims)
        keep = np.ones(len(idx), dtype=bool)
        if self._hashes is not None and positive_hash is not None:
            removed = self._hashes[idx] == positive_hash
            stats.duplicate += int(removed.sum())
            keep &= ~removed
        self._margins(sims, positive_sim, keep, stats)
        return _Pool(
            source,
            idx[keep],
            ranks[keep] if source != "random" else None,
            source_scores[keep] if source_scores is not None else None,
            sims[keep],
            chunk_rows=chunk_rows[keep] if chunk_rows is not None else None,
        )

    def _best_chunks(self, idx: np.ndarray, query: np.ndarray, sims: np.ndarray) -> np.ndarray | None:
        """For chunked (long) candidates, put their best chunk's similarity into ``sims``; return the chunk rows.

        Output: per candidate the row of its best chunk (-1 when it is not chunked), or
        None without chunking.
        """
        if self.chunks is None or self._chunked is None:
            return None
        rows = np.full(len(idx), -1, dtype=np.int64)
        for k in np.flatnonzero(self._chunked[idx]):
            rows[k], sims[k] = self.chunks.best_row(self.doc_ids[int(idx[k])], query)
        return rows

    def _margins(self, sims: np.ndarray, positive_sim: float, keep: np.ndarray, stats: SourceStats) -> None:
        """Clear ``keep`` where a similarity is within a margin of the positive's; count what each margin removes."""
        cfg = self.settings
        if cfg.absolute_margin is not None:
            removed = keep & (sims + np.float32(cfg.absolute_margin) > positive_sim)
            stats.margin_absolute += int(removed.sum())
            keep &= ~removed
        if cfg.relative_margin is not None:
            removed = keep & (sims > positive_sim - abs(positive_sim) * cfg.relative_margin)
            stats.margin_relative += int(removed.sum())
            keep &= ~removed

    def _generated_pool(
        self, i: int, query: np.ndarray, positive_sim: float, positive_text: str, stats: SourceStats
    ) -> _Pool:
        """Return the ``llm`` candidates of pair ``i``, in reply order.

        Near copies of the positive and passages within a margin of the
        positive's similarity are removed (and counted). Their positions are
        ``len(doc_ids) + k`` (k-th passage of the pair), so they never collide
        with corpus documents in ``taken`` or the cross-encoder memo.
        """
        texts = self._generated[i]
        stats.retrieved += len(texts)
        stats.candidates += len(texts)
        sims = self._generated_vectors[i] @ query if texts else np.zeros(0, dtype=np.float32)
        keep = np.ones(len(texts), dtype=bool)
        if self.settings.drop_duplicates:
            positive_hash, positive_tokens = text_hash(positive_text), text_tokens(positive_text)
            removed = np.array(
                [
                    text_hash(t) == positive_hash
                    or jaccard(text_tokens(t), positive_tokens) >= self.settings.near_duplicate_overlap
                    for t in texts
                ],
                dtype=bool,
            )
            stats.duplicate += int(removed.sum())
            keep &= ~removed
        self._margins(sims, positive_sim, keep, stats)
        positions = np.arange(len(self.doc_ids), len(self.doc_ids) + len(texts), dtype=np.int64)
        return _Pool(
            "llm",
            positions[keep],
            np.arange(len(texts))[keep],
            None,
            sims[keep],
            texts=[t for t, k in zip(texts, keep, strict=True) if k],
        )

    def _candidates(
        self,
        source: str,
        pair: TrainingPair,
        exclusion: np.ndarray,
        ranked: Mapping[str, tuple[np.ndarray, np.ndarray]],
        rng: np.random.Generator,
        stats: SourceStats,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Raw candidates of one source for one pair, labelled positives removed, window applied."""
        if source in ranked:
            idx, scores = ranked[source]
            return self._windowed(idx, scores, exclusion, stats, positive_only=source == "bm25")
        if source == "clicks":
            clicks = np.array([self._position[d] for d in pair.click_negatives], dtype=np.int64)
            return self._unranked(clicks, exclusion, stats)
        size = min(len(self.doc_ids), self.settings.random_pool + len(exclusion))
        return self._unranked(rng.choice(len(self.doc_ids), size=size, replace=False), exclusion, stats)

    def _mine_one(
        self,
        i: int,
        pair: TrainingPair,
        query: np.ndarray,
        positive_sim: float,
        exclusion: np.ndarray,
        ranked: Mapping[str, tuple[np.ndarray, np.ndarray]],
        stats: dict[str, SourceStats],
    ) -> MinedExample | None:
        """Collect, filter and choose one pair's negatives (None when fewer than asked survive)."""
        cfg = self.settings
        rng = np.random.default_rng([cfg.seed, i])
        positive_text = pair.positive_text if pair.positive_text is not None else self._text(pair.doc_id)
        positive_hash = text_hash(positive_text) if self._hashes is not None else None
        pools = {}
        for source in cfg.enabled():
            if source == "llm":
                pools[source] = self._generated_pool(i, query, positive_sim, positive_text, stats[source])
                continue
            found = self._candidates(source, pair, exclusion, ranked, rng, stats[source])
            pool = self._filter(source, found, query, positive_sim, positive_hash, stats[source])
            if cfg.sampling == "random" and source in ("dense", "bm25"):
                order = rng.permutation(len(pool.idx))
                pool.idx, pool.sims = pool.idx[order], pool.sims[order]
                pool.chunk_rows = pool.chunk_rows[order] if pool.chunk_rows is not None else None
                pool.ranks = pool.ranks[order] if pool.ranks is not None else None
                pool.source_scores = pool.source_scores[order] if pool.source_scores is not None else None
            pools[source] = pool
        cross = self._scorer.cross_scores(pair.query, positive_text)
        chosen: list[Negative] = []
        taken: set[int] = set()
        absent = () if pair.click_negatives else ("clicks",)
        for source, quota in cfg.quotas(absent).items():
            self._take(pools[source], quota, chosen, taken, cross, stats[source], backfill=False)
        for source in cfg.enabled():
            self._take(pools[source], cfg.negatives - len(chosen), chosen, taken, cross, stats[source], backfill=True)
        if len(chosen) < cfg.negatives:
            return None
        return MinedExample(i, positive_sim, cross.positive if cross else None, chosen)

    def _text(self, doc_id: str) -> str:
        """Return a document's text by id."""
        return self.doc_texts[self._position[doc_id]]

    def _chunk_of(self, pool: _Pool, k: int) -> Chunk | None:
        """Return the best chunk of the pool's ``k``-th candidate (None when it is not chunked)."""
        if self.chunks is None or pool.chunk_rows is None or pool.chunk_rows[k] < 0:
            return None
        return self.chunks.chunks[int(pool.chunk_rows[k])]

    def _candidate_text(self, pool: _Pool, k: int) -> str:
        """Return the text of the pool's ``k``-th candidate as it would be trained on (passage, chunk or document)."""
        if pool.texts is not None:
            return pool.texts[k]
        chunk = self._chunk_of(pool, k)
        return chunk.encode_text() if chunk is not None else self.doc_texts[int(pool.idx[k])]

    def _take(
        self,
        pool: _Pool,
        limit: int,
        chosen: list[Negative],
        taken: set[int],
        cross: CrossScores | None,
        stats: SourceStats,
        *,
        backfill: bool,
    ) -> None:
        """Move up to ``limit`` negatives from ``pool`` to ``chosen`` (cross-encoder margin checked lazily)."""
        got = 0
        while got < limit and pool.cursor < len(pool.idx):
            k = pool.cursor
            pool.cursor += 1
            doc = int(pool.idx[k])
            if doc in taken:
                continue
            ce_score = None
            if cross is not None:
                self._scorer.score_ahead(cross, pool.idx, k, limit - got, partial(self._candidate_text, pool))
                ce_score = cross.scores[doc]
                if not self._scorer.passes_cross_margin(ce_score, cross.positive):
                    stats.cross_encoder += 1
                    continue
            taken.add(doc)
            text = pool.texts[k] if pool.texts is not None else None
            chunk = self._chunk_of(pool, k)
            chosen.append(
                Negative(
                    doc_id=generated_id(text) if text is not None else self.doc_ids[doc],
                    source=pool.source,
                    rank=int(pool.ranks[k]) if pool.ranks is not None else None,
                    source_score=float(pool.source_scores[k]) if pool.source_scores is not None else None,
                    score=float(pool.sims[k]),
                    ce_score=ce_score,
                    text=text,
                    chunk=chunk.id if chunk is not None else None,
                    chunk_text=chunk.encode_text() if chunk is not None else None,
                )
            )
            got += 1
            if backfill:
                stats.backfilled += 1
            else:
                stats.selected += 1
