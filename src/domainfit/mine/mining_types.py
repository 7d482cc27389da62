"""Settings and result types of hard-negative mining (see `domainfit.mine.negatives`).

`MiningSettings` holds every knob of `domainfit.mine.negatives.NegativeMiner`;
`MiningResult` (with `MinedExample`, `Negative` and `SourceStats`) is what it returns.
`SOURCES` lists the negative sources and `Encoder` what the miner needs from a bi-encoder.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np

from domainfit.retrieval.dense import SearchBackend

#: Every source, in priority order: quotas are dealt round-robin and shortfalls backfilled in this order.
SOURCES: tuple[str, ...] = ("clicks", "llm", "dense", "bm25", "random")
#: The sources mined by default (``llm`` needs generated passages, so it is opt-in).
DEFAULT_SOURCES: tuple[str, ...] = ("clicks", "dense", "bm25", "random")
SourceName = Literal["clicks", "llm", "dense", "bm25", "random"]


class Encoder(Protocol):
    """What the miner needs from a bi-encoder (`domainfit.retrieval.dense.DenseRetriever` fits)."""

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Return L2-normalised query vectors, one row per text."""
        ...

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        """Return L2-normalised document vectors, one row per text."""
        ...


@dataclass(frozen=True)
class MiningSettings:
    """Every knob of the miner.

    ``sources`` are mixed with ``per_source`` counts (summing to ``negatives``;
    by default ``negatives`` is dealt round-robin over the sources in `SOURCES`
    order; ``clicks`` hands its share to the others for pairs without clicks).
    ``sampling`` picks from each window the best ranks (``top``) or a seeded
    random sample (``random``). Margins set to None are off.
    ``random_pool`` is how many documents the random source draws per pair.
    ``near_duplicate_overlap`` is the token Jaccard with the positive at which
    an ``llm`` passage counts as a near copy of it (dropped with ``drop_duplicates``).
    ``block_mib`` bounds one numpy search block. ``query_batch`` queries are
    searched per step.
    """

    sources: tuple[str, ...] = DEFAULT_SOURCES
    negatives: int = 4
    per_source: Mapping[str, int] | None = None
    range_min: int = 10
    range_max: int = 100
    sampling: Literal["top", "random"] = "random"
    absolute_margin: float | None = None
    relative_margin: float | None = 0.05
    drop_duplicates: bool = True
    near_duplicate_overlap: float = 0.8
    ce_absolute_margin: float | None = None
    ce_relative_margin: float | None = 0.05
    seed: int = 13
    query_batch: int = 256
    search_backend: SearchBackend = "auto"
    block_mib: int = 64
    random_pool: int = 32
    ce_batch_size: int = 32
    bm25_k1: float = 1.2
    bm25_b: float = 0.75

    def __post_init__(self) -> None:
        """Reject unknown sources, empty windows and counts that do not add up."""
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown or not self.sources:
            raise ValueError(f"sources must be a non-empty subset of {SOURCES}, got {list(self.sources)}")
        if self.negatives < 1:
            raise ValueError(f"negatives must be >= 1, got {self.negatives}")
        if not 0 < self.near_duplicate_overlap <= 1:
            raise ValueError(f"near_duplicate_overlap must be in (0, 1], got {self.near_duplicate_overlap}")
        if not 0 <= self.range_min < self.range_max:
            raise ValueError(f"need 0 <= range_min < range_max, got {self.range_min}, {self.range_max}")
        if self.per_source is not None:
            extra = sorted(set(self.per_source) - set(self.sources))
            if extra:
                raise ValueError(f"per_source names sources that are not enabled: {extra}")
            if sum(self.per_source.values()) != self.negatives:
                raise ValueError(f"per_source counts sum to {sum(self.per_source.values())}, not {self.negatives}")

    def enabled(self) -> list[str]:
        """Return the enabled sources in `SOURCES` order."""
        return [s for s in SOURCES if s in self.sources]

    def quotas(self, absent: Collection[str] = ()) -> dict[str, int]:
        """Return how many negatives each enabled source contributes before backfilling.

        Sources in ``absent`` do not apply to a pair (``clicks`` for a query
        without click data): their share is dealt round-robin to the others.
        """
        enabled = self.enabled()
        present = [s for s in enabled if s not in absent]
        if self.per_source is None:
            quotas = dict.fromkeys(enabled, 0)
            spare = self.negatives
        else:
            quotas = {s: int(self.per_source.get(s, 0)) if s in present else 0 for s in enabled}
            spare = sum(int(self.per_source.get(s, 0)) for s in enabled if s in absent)
        for i in range(spare if present else 0):
            quotas[present[i % len(present)]] += 1
        return quotas

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob (and the resolved quotas), for summaries and manifests."""
        data = asdict(self)
        data["sources"] = self.enabled()
        data["per_source"] = dict(self.per_source) if self.per_source is not None else None
        data["quotas"] = self.quotas()
        return data


@dataclass
class Negative:
    """One chosen negative: document, source, rank in that source (None for random), scores.

    ``score`` is the base model's cosine similarity to the query (the same
    scale for every source); ``source_score`` the source's own score (BM25
    score, cosine for dense, None otherwise); ``ce_score`` the cross-encoder's.
    ``text`` is set only for generated passages (source ``llm``), whose
    ``doc_id`` is ``llm:<sha1[:12]>`` of that text and names no corpus document.
    ``chunk`` / ``chunk_text`` are set when the document is longer than the
    window and chunking is on: the id and encoded text of its chunk closest to
    the query (``score`` is that chunk's similarity).
    """

    doc_id: str
    source: str
    rank: int | None
    source_score: float | None
    score: float
    ce_score: float | None = None
    text: str | None = None
    chunk: str | None = None
    chunk_text: str | None = None


@dataclass
class MinedExample:
    """The negatives of one pair (``pair`` indexes the pairs given to `NegativeMiner.mine`)."""

    pair: int
    positive_score: float
    positive_ce_score: float | None
    negatives: list[Negative]


@dataclass
class SourceStats:
    """Counts for one source over a whole run.

    ``retrieved``: candidates the source returned; ``labelled_skipped``: of
    those, the positive or a labelled positive of the query; ``candidates``:
    what was left in the rank window; ``duplicate``, ``margin_absolute``,
    ``margin_relative``: removed by each false-negative filter (in that order,
    each candidate counted once); ``cross_encoder``: removed by the
    cross-encoder margin (only candidates it scored, which are the ones about
    to be chosen); ``selected``: negatives taken within the source's quota;
    ``backfilled``: negatives taken to make up another source's shortfall
    (its window or filters left it fewer candidates than its quota).
    """

    retrieved: int = 0
    labelled_skipped: int = 0
    candidates: int = 0
    duplicate: int = 0
    margin_absolute: int = 0
    margin_relative: int = 0
    cross_encoder: int = 0
    selected: int = 0
    backfilled: int = 0


@dataclass
class MiningResult:
    """Mined examples (pairs that got ``negatives`` negatives), dropped pairs, counts per source."""

    examples: list[MinedExample]
    dropped: list[int]
    stats: dict[str, SourceStats]
    settings: MiningSettings
    cross_encoder_scored: int = 0

    def filter_totals(self) -> dict[str, int]:
        """Return what each filter removed, summed over the sources."""
        names = ("labelled_skipped", "duplicate", "margin_absolute", "margin_relative", "cross_encoder")
        return {name: sum(getattr(s, name) for s in self.stats.values()) for name in names}

    def negatives_per_source(self) -> dict[str, int]:
        """Return how many chosen negatives came from each source."""
        return {name: s.selected + s.backfilled for name, s in self.stats.items()}
